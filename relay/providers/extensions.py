"""The bounded pass-through of schema 1.1: what a provider sent that no typed part models.

``data.extensions.<provider>.<part>`` holds an object's leftover keys, JSON as received.
It is bounded: at most :data:`MAX_KEYS` keys an object (then ``_omitted_keys`` counts the
rest), and past :data:`MAX_EXTENSION_BYTES` (encoded) the largest values are left out and
their keys listed under ``_omitted`` (the raw body on ``relay.raw`` still has them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

MAX_EXTENSION_BYTES = 16 * 1024
OMITTED = "_omitted"
OMITTED_KEYS = "_omitted_keys"
MAX_KEYS = 256
"""Leftover keys kept per object; past it only their number (``_omitted_keys``) is."""
_MAX_OMITTED = 64

_encoder = msgspec.json.Encoder()
_CONTAINERS = (dict, list)


def leftovers(obj: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any] | None:
    """The keys of ``obj`` not in ``known`` (compared without stray whitespace), minus nulls
    and empty objects or lists."""
    found: dict[str, Any] = {}
    if type(obj) is dict and len(obj) < len(known) + MAX_KEYS:  # else the bound is reached
        extra = obj.keys() - known  # at C speed; most objects have few keys relay lacks
        if not extra:
            return None
        if len(extra) < MAX_KEYS:  # the bound cannot be reached: no count to keep
            for key in [k for k in obj if k in extra]:  # in the body's order
                value = obj[key]
                if value is None or (not value and type(value) in _CONTAINERS):
                    continue
                if isinstance(key, str) and key.strip() in known:
                    continue
                found[key] = value
            return found or None
    for scanned, (key, value) in enumerate(obj.items()):
        if len(found) >= MAX_KEYS:
            found[OMITTED_KEYS] = len(obj) - scanned
            break
        if key in known or value is None:
            continue
        if not value and type(value) in _CONTAINERS:  # {} or []
            continue
        if isinstance(key, str) and key.strip() in known:
            continue
        found[key] = value
    return found or None


def bounded(
    parts: Iterable[tuple[str, dict[str, Any] | None]], body_size: int | None = None
) -> dict[str, Any] | None:
    """``{part: leftovers}`` for the parts that have any, cut to the size bound.

    ``body_size``: the size of the body they come from. Leftovers are disjoint pieces of
    it, and re-encoded JSON grows at most ~4.5 times (``1e15`` → ``1000000000000000.0``;
    strings only shrink), so a body five times under the bound needs no measuring.
    """
    return fit({name: value for name, value in parts if value}, body_size)


def fit(result: dict[str, Any], body_size: int | None = None) -> dict[str, Any] | None:
    """:func:`bounded` of ``{part: leftovers}`` already without empty parts."""
    if not result:
        return None
    if body_size is not None and 5 * body_size + 32 * len(result) <= MAX_EXTENSION_BYTES:
        return result
    try:
        size = len(_encoder.encode(result))
    except (TypeError, ValueError, OverflowError):  # pragma: no cover - decoded JSON encodes
        return None
    if size <= MAX_EXTENSION_BYTES:
        return result
    # Too large: price every value once, then drop the largest until it fits (on copies:
    # the callers' objects are the decoded body).
    result = {name: dict(values) for name, values in result.items()}
    priced: list[tuple[int, str, str]] = []
    for part, values in result.items():
        for key, value in values.items():
            priced.append((len(_encoder.encode(value)) + len(key) + 4, part, key))
    priced.sort(reverse=True)
    omitted: list[str] = []
    for cost, part, key in priced:
        if size <= MAX_EXTENSION_BYTES // 2:  # room left for the list of omitted keys
            break
        del result[part][key]
        omitted.append(f"{part}.{key}"[:100])
        size -= cost
    kept: dict[str, Any] = {name: values for name, values in result.items() if values}
    kept[OMITTED] = omitted[:_MAX_OMITTED]
    return kept
