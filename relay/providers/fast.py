"""What the typed fast paths share (DESIGN §11: normalizing costs at most ~3x decoding).

A provider's fast path decodes the shapes it knows with msgspec decoders built once
(objects as ``dict[str, msgspec.Raw]`` or Structs, values decoded only when read) and
builds the canonical event with plain lookups instead of the tolerant readers' key scans.
It must give exactly what the tolerant path gives, so it declines (raises
:class:`Fallback`, or msgspec raises ValidationError/DecodeError) whenever it meets what
it does not model: a key with stray whitespace in an object it reads, a value of an
unexpected JSON type, a shape it has no reader for. The tolerant path then reads the body.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from relay.events import CloudEvent
from relay.providers.base import Inbound
from relay.providers.extensions import MAX_KEYS

FALLBACK_ERRORS = (msgspec.ValidationError, msgspec.DecodeError)


class Fallback(Exception):
    """The fast path does not model this body; the tolerant path must read it."""


_raw_object = msgspec.json.Decoder(dict[str, msgspec.Raw])
_any = msgspec.json.Decoder()


def raw_object(raw: bytes | msgspec.Raw) -> dict[str, msgspec.Raw]:
    """An object's keys in the body's order, values undecoded."""
    return _raw_object.decode(raw)


def leftovers(raw: dict[str, msgspec.Raw], known: frozenset[str]) -> dict[str, Any] | None:
    """:func:`relay.providers.extensions.leftovers` for an object read by :func:`raw_object`
    in a body without padded keys: the keys not in ``known``, in order, minus nulls and
    empty objects or lists."""
    extra = raw.keys() - known
    if not extra:
        return None
    if len(extra) >= MAX_KEYS:  # the tolerant path counts what it leaves out
        raise Fallback
    found: dict[str, Any] = {}
    for key in [k for k in raw if k in extra]:
        value = _any.decode(raw[key])
        if value is None or (not value and type(value) in (dict, list)):
            continue
        found[key] = value
    return found or None


def blank(struct: msgspec.Struct) -> bool:
    """No modelled field of ``struct`` was sent (or all were null): the object may have
    been ``{}`` or held only keys the Struct ignores, which the tolerant path tells apart."""
    return all(value is None for value in msgspec.structs.astuple(struct))


Normalize = Callable[[Inbound], list[CloudEvent]]


def fast_or_tolerant(fast: Normalize, tolerant: Normalize, inbound: Inbound) -> list[CloudEvent]:
    try:
        return fast(inbound)
    except (Fallback, *FALLBACK_ERRORS):
        return tolerant(inbound)
