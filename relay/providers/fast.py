"""What the fast paths share (DESIGN §11: normalizing costs at most ~3x decoding).

A provider's fast path decodes the body once and builds the canonical event with plain
lookups instead of the tolerant readers' key scans.
It must give exactly what the tolerant path gives, so it declines (raises
:class:`Fallback`, or msgspec refuses the body) whenever it meets what
it does not model: a key with stray whitespace in an object it reads, a value of an
unexpected JSON type, a shape it has no reader for. The tolerant path then reads the body.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import msgspec

from relay.events import CloudEvent
from relay.providers.base import Inbound
from relay.providers.coerce import forget_indexes
from relay.providers.extensions import MAX_KEYS

# msgspec's refusals (the tolerant path says what is wrong) and nesting too deep to decode
FALLBACK_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, RecursionError)


class Fallback(Exception):
    """The fast path does not model this body; the tolerant path must read it."""

    def __init__(self, payload: Any = None) -> None:
        super().__init__()
        self.payload = payload
        """The body as the fast path decoded it (None: not decoded), so it is not decoded
        twice."""


_CONTAINERS = (dict, list)


def leftovers(obj: dict[str, Any], known: frozenset[str]) -> dict[str, Any] | None:
    """:func:`relay.providers.extensions.leftovers` of an object whose keys carry no stray
    whitespace: one pass, in the body's order."""
    extra = obj.keys() - known
    if not extra:
        return None
    if len(extra) >= MAX_KEYS:  # the tolerant path counts what it leaves out
        raise Fallback
    found = {
        key: value
        for key, value in obj.items()
        if key in extra and value is not None and (value or type(value) not in _CONTAINERS)
    }
    return found or None


def plain(obj: dict[str, Any], known: frozenset[str]) -> dict[str, Any]:
    """``obj`` itself, once its keys are known to carry no stray whitespace."""
    keys = obj.keys()
    if len(keys) >= len(known) + MAX_KEYS:
        raise Fallback  # that many unknown keys: the tolerant path bounds what it keeps
    if keys <= known:
        return obj
    extra = keys - known
    if len(extra) >= MAX_KEYS or set(map(str.strip, extra)) != extra:
        raise Fallback
    return obj


Normalize = Callable[[Inbound], list[CloudEvent]]
Tolerant = Callable[[Inbound, Any], list[CloudEvent]]


class TolerantNormalizer(Protocol):
    def __call__(self, inbound: Inbound, payload: Any = None) -> list[CloudEvent]: ...


def forgetting(tolerant: Tolerant) -> TolerantNormalizer:
    """A provider's tolerant normalizer (``tolerant(inbound, the body already decoded or
    None)``) that drops the padded-key indexes when done, so none keeps a body alive."""

    def normalize_tolerant(inbound: Inbound, payload: Any = None) -> list[CloudEvent]:
        try:
            return tolerant(inbound, payload)
        finally:
            forget_indexes()

    normalize_tolerant.__doc__ = tolerant.__doc__
    return normalize_tolerant


def fast_or_tolerant(fast: Normalize, tolerant: Tolerant, inbound: Inbound) -> list[CloudEvent]:
    try:
        return fast(inbound)
    except Fallback as declined:
        return tolerant(inbound, declined.payload)
    except FALLBACK_ERRORS:
        return tolerant(inbound, None)
    finally:
        # the tolerant readers a fast path borrows may have indexed a large object's keys:
        # the index must not keep the body alive past the request
        forget_indexes()
