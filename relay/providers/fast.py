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
from typing import Any

import msgspec

from relay.events import CloudEvent
from relay.providers.base import Inbound

# msgspec's refusals (the tolerant path says what is wrong) and nesting too deep to decode
FALLBACK_ERRORS = (msgspec.ValidationError, msgspec.DecodeError, RecursionError)


class Fallback(Exception):
    """The fast path does not model this body; the tolerant path must read it."""

    def __init__(self, payload: Any = None) -> None:
        super().__init__()
        self.payload = payload
        """The body as the fast path decoded it (None: not decoded), so it is not decoded
        twice."""


Normalize = Callable[[Inbound], list[CloudEvent]]
Tolerant = Callable[[Inbound, Any], list[CloudEvent]]


def fast_or_tolerant(fast: Normalize, tolerant: Tolerant, inbound: Inbound) -> list[CloudEvent]:
    try:
        return fast(inbound)
    except Fallback as declined:
        return tolerant(inbound, declined.payload)
    except FALLBACK_ERRORS:
        return tolerant(inbound, None)
