"""The two ways a builder reads a decoded body, so that one builder serves both paths.

:data:`TOLERANT` reads with :mod:`relay.providers.coerce` (keys with stray whitespace
found, any value accepted); :func:`plain_reads` reads with ``dict.get`` and checks each
object once, as it is reached, for keys with stray whitespace, raising
:class:`~relay.providers.fast.Fallback` when it finds one (or too many unknown keys), so
the tolerant path reads that body instead. On objects whose keys are clean both give the
same values, which is why a builder written against :class:`Reads` gives the same events
on the fast path and on the tolerant one (tests/unit/providers/test_fast.py compares them).
Both read decoded JSON, whose objects are ``dict``: builders test for ``dict``, not for
the slower ``Mapping`` ABC.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from relay.providers import coerce, extensions
from relay.providers.coerce import as_str
from relay.providers.fast import passthrough, plain

_EMPTY: dict[str, Any] = {}


@dataclass(frozen=True, slots=True)
class Reads:
    """How a builder reads an object: each is ``coerce``'s function of the same name, or
    its plain equivalent (the object's keys proven clean)."""

    get: Callable[[Any, str], Any]
    get_str: Callable[..., str | None]
    """``get_str(obj, *keys)``: the first of ``keys`` with a non-blank scalar, as text."""
    get_obj: Callable[[Any, str], Mapping[str, Any]]
    get_list: Callable[[Any, str], list[Any]]
    checked: Callable[[Any], Any]
    """An object reached otherwise (a list item, a value found by iterating): itself,
    once its keys are known clean."""
    leftovers: Callable[[Mapping[str, Any], frozenset[str]], dict[str, Any] | None]
    clean: bool
    """Keys are exactly as spelt (a builder may test them with set operations)."""


def _same(value: Any) -> Any:
    return value


TOLERANT = Reads(
    get=coerce.get,
    get_str=coerce.get_str,
    get_obj=coerce.get_obj,
    get_list=coerce.get_list,
    checked=_same,
    leftovers=extensions.leftovers,
    clean=False,
)


def plain_reads(known: frozenset[str]) -> Reads:
    """Plain reads for a provider whose objects use the keys ``known`` (others are checked
    one by one)."""

    def checked(value: Any) -> Any:
        return plain(value, known) if type(value) is dict else value

    def get(obj: Any, key: str) -> Any:
        return obj.get(key) if type(obj) is dict else None

    def get_str(obj: Any, *keys: str) -> str | None:
        if type(obj) is not dict:
            return None
        for key in keys:
            value = obj.get(key)
            if value is not None and (text := as_str(value)) is not None:
                return text
        return None

    def get_obj(obj: Any, key: str) -> Mapping[str, Any]:
        value = obj.get(key) if type(obj) is dict else None
        return plain(value, known) if type(value) is dict else _EMPTY

    def get_list(obj: Any, key: str) -> list[Any]:
        value = obj.get(key) if type(obj) is dict else None
        if type(value) is not list:
            return []
        for item in value:
            if type(item) is dict:
                plain(item, known)
        return value

    return Reads(
        get=get,
        get_str=get_str,
        get_obj=get_obj,
        get_list=get_list,
        checked=checked,
        # given only objects ``checked`` (or get_obj) returned: their key shapes cached
        leftovers=passthrough,
        clean=True,
    )
