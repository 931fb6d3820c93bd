"""The fast path for Chatwoot bodies: one msgspec decode, then the one normalizer.

The readers are the same either way (:mod:`relay.providers.chatwoot.normalize` reads every
object through :func:`relay.providers.fast.clean`); what falls back to the tolerant path is
only a body msgspec will not decode (a lone surrogate, nesting too deep), which
:func:`relay.providers.base.parse_json` reads instead.
"""

from __future__ import annotations

import msgspec

from relay.events import CloudEvent
from relay.providers.base import Inbound
from relay.providers.chatwoot.normalize import normalize_payload

decode = msgspec.json.Decoder().decode


def normalize_fast(inbound: Inbound) -> list[CloudEvent]:
    """The events of a body msgspec decodes (its refusals reach the caller)."""
    return normalize_payload(inbound, decode(inbound.body))
