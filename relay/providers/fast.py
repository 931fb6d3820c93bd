"""What the normalizers share (DESIGN §11: normalizing costs at most ~3x decoding).

A normalizer decodes the body once and reads every object through :func:`clean`: plain
lookups at dict speed, with what the tolerant readers (:mod:`relay.providers.coerce`) would
find when a key carries stray whitespace. Only a body msgspec will not decode (a lone
surrogate, nesting too deep) is read the tolerant way (:func:`fast_or_tolerant`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import msgspec

from relay.events import CloudEvent
from relay.providers.base import Inbound
from relay.providers.coerce import _CANONICAL, as_time, forget_indexes
from relay.providers.coerce import get as tolerant_get
from relay.providers.extensions import MAX_KEYS
from relay.providers.extensions import leftovers as tolerant_leftovers

# msgspec's refusals (the tolerant path says what is wrong) and nesting too deep to decode
FALLBACK_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, RecursionError)

_CONTAINERS = (dict, list)


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
    except FALLBACK_ERRORS:
        return tolerant(inbound, None)
    finally:
        # the padded-key indexes of large objects must not keep the body alive past the
        # request
        forget_indexes()


# Objects of one provider come in a few shapes (the same keys in the same order, body after
# body): what a shape says (its keys not in a known set, in order, and whether any carries
# stray whitespace) is worked out once per shape. Bounded: large objects are not cached.
_SHAPE_KEYS = 64
_MAX_SHAPES = 2048
_shapes: dict[tuple[frozenset[str], tuple[str, ...]], tuple[tuple[str, ...], bool]] = {}


def _shape(obj: dict[str, Any], known: frozenset[str]) -> tuple[tuple[str, ...], bool]:
    """The keys of ``obj`` not in ``known`` (in the body's order), and whether a key of
    ``obj`` carries stray whitespace (only those keys can: ``known`` holds stripped ones)."""
    keys = tuple(obj)
    if len(keys) > _SHAPE_KEYS:
        return _analyse(keys, known)
    found = _shapes.get((known, keys))
    if found is None:
        if len(_shapes) >= _MAX_SHAPES:
            _shapes.clear()
        found = _shapes[(known, keys)] = _analyse(keys, known)
    return found


def _analyse(keys: tuple[str, ...], known: frozenset[str]) -> tuple[tuple[str, ...], bool]:
    extra = tuple(key for key in keys if key not in known)
    return extra, any(key.strip() != key for key in extra)


def clean(obj: Any, known: frozenset[str]) -> Mapping[str, Any]:
    """What a reader may ``.get`` from a JSON object: ``obj`` itself, or when a key carries
    stray whitespace, a copy where each padded key is also found stripped (its first
    spelling, unless the exact key is there): what :func:`relay.providers.coerce.get` would
    find, at dict speed. Anything but an object reads as an empty one (``get_obj``)."""
    if type(obj) is not dict:
        return obj if type(obj) is _Large else _EMPTY
    if obj.keys() <= known:
        return obj
    if len(obj) > _SHAPE_KEYS:
        return _Large(obj)
    if not _shape(obj, known)[1]:
        return obj
    return _stripped(obj)


class _Large(Mapping[str, Any]):
    """:func:`clean` of an object too large to check key by key (a 1 MiB body can hold 100k
    keys), without copying it: its exact keys at dict speed, any other as
    :func:`relay.providers.coerce.get` finds it (its index of the object's keys, built
    once)."""

    __slots__ = ("_obj",)

    def __init__(self, obj: dict[str, Any]) -> None:
        self._obj = obj

    def get(self, key: str, default: Any = None) -> Any:
        value = self._obj.get(key, _MISSING)
        if value is _MISSING:
            value = tolerant_get(self._obj, key)
            return default if value is None else value
        return value

    def __getitem__(self, key: str) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self._obj)

    def __len__(self) -> int:
        return len(self._obj)


def _stripped(obj: dict[str, Any]) -> dict[str, Any]:
    keys = list(obj)
    keys.reverse()
    values = list(obj.values())
    values.reverse()
    view = dict(zip(map(str.strip, keys), values, strict=True))  # the first spelling wins
    view.update(obj)  # and an exact key over any padded one
    return view


def passthrough(obj: Any, known: frozenset[str]) -> dict[str, Any] | None:
    """:func:`relay.providers.extensions.leftovers` of an object (None for anything else),
    from its cached shape when its keys carry no stray whitespace."""
    if type(obj) is not dict:
        return None
    if len(obj) >= MAX_KEYS:
        return tolerant_leftovers(obj, known)
    extra, padded = _shape(obj, known)
    if not extra:
        return None
    if padded:
        return tolerant_leftovers(obj, known)
    return _kept(obj, extra)


def _kept(obj: dict[str, Any], extra: tuple[str, ...]) -> dict[str, Any] | None:
    found = {}
    for key in extra:
        value = obj[key]
        if value is not None and (value or type(value) not in _CONTAINERS):
            found[key] = value
    return found or None


def read(obj: Any, known: frozenset[str]) -> tuple[Mapping[str, Any], dict[str, Any] | None]:
    """``(clean(obj, known), passthrough(obj, known))`` with one look at the object's keys
    (a reader that needs both would otherwise check them twice)."""
    if type(obj) is not dict or len(obj) > _SHAPE_KEYS:
        return clean(obj, known), passthrough(obj, known)
    # _shape and _kept inline: this runs for the few large objects of every body
    keys = tuple(obj)
    shape = _shapes.get((known, keys))
    if shape is None:
        if len(_shapes) >= _MAX_SHAPES:
            _shapes.clear()
        shape = _shapes[(known, keys)] = _analyse(keys, known)
    extra, padded = shape
    if padded:
        return _stripped(obj), tolerant_leftovers(obj, known)
    if not extra:
        return obj, None
    found = {}
    for key in extra:
        value = obj[key]
        if value is not None and (value or type(value) not in _CONTAINERS):
            found[key] = value
    return obj, found or None


_EMPTY: dict[str, Any] = {}
_MISSING: Any = object()


_MINUTES: dict[int, str] = {}
"""Epoch minute → ``YYYY-MM-DDTHH:MM:``: a body's times, and a day's, share a few (bounded)."""
_VALID_MINUTES: set[str] = set()
"""``YYYY-MM-DDTHH:MM`` prefixes of canonical times already found valid (bounded)."""
_SECONDS = [f"{n:02d}" for n in range(60)]
# what may follow a valid minute in a canonical time: ``:SS.`` (00-59) and ``mmmZ``, as sets
# (a lookup each is several times cheaper than the regex)
_SECOND_PARTS = frozenset(f":{second}." for second in _SECONDS)
_MILLI_PARTS = frozenset(f"{n:03d}Z" for n in range(1000))
_FIRST_SECOND = 946_684_800  # coerce's range: 2000-01-01 .. 2200-01-01
_LAST_SECOND = 7_258_118_400


def time_of(value: Any) -> str | None:
    """:func:`relay.providers.coerce.as_time` with its two common inputs (what Chatwoot
    sends) answered from per-minute caches: RFC 3339 text already canonical, and whole
    epoch seconds. Anything else is ``as_time``'s."""
    kind = type(value)
    if kind is str:
        if len(value) != 24:
            return as_time(value)
        if (
            value[:16] in _VALID_MINUTES
            and value[16:20] in _SECOND_PARTS
            and value[20:] in _MILLI_PARTS
        ):
            return value  # type: ignore[no-any-return]
        if _CANONICAL.fullmatch(value) is not None:
            minute = value[:16]
            found = as_time(value)
            if found is not None:
                if len(_VALID_MINUTES) >= 4096:
                    _VALID_MINUTES.clear()
                _VALID_MINUTES.add(minute)
            return found
    elif kind is int and _FIRST_SECOND <= value <= _LAST_SECOND:
        minute, second = divmod(value, 60)
        return f"{_MINUTES.get(minute) or _minute(minute)}{_SECONDS[second]}.000Z"
    elif kind is float and _FIRST_SECOND <= value <= _LAST_SECOND:
        # coerce's rounding (datetime's: to the microsecond, half to even), then truncated
        fraction, whole = math.modf(value)
        micros = round(fraction * 1e6)
        if micros >= 1_000_000:
            whole += 1.0
            micros -= 1_000_000
        minute, second = divmod(int(whole), 60)
        prefix = _MINUTES.get(minute) or _minute(minute)
        return f"{prefix}{_SECONDS[second]}.{_MILLIS[micros // 1000]}Z"
    return as_time(value)


def _minute(minute: int) -> str:
    """``YYYY-MM-DDTHH:MM:`` of an epoch minute."""
    prefix = _MINUTES.get(minute)
    if prefix is None:
        if len(_MINUTES) >= 4096:
            _MINUTES.clear()
        prefix = _MINUTES[minute] = (as_time(minute * 60) or "")[:17]
    return prefix


_MILLIS = [f"{n:03d}" for n in range(1000)]
