"""Provider dialects: each a unit (:class:`Provider`) that turns its webhooks into
canonical events. Everything else looks a dialect up here, by the source's provider name."""

from relay.events import ProviderName
from relay.providers import chatwoot, plugchat
from relay.providers.base import (
    Inbound,
    MalformedBody,
    Normalizer,
    Provider,
    SignatureError,
    Unmappable,
)

PROVIDERS: dict[str, Provider] = {p.name: p for p in (chatwoot.PROVIDER, plugchat.PROVIDER)}

NORMALIZERS: dict[str, Normalizer] = {name: p.normalize for name, p in PROVIDERS.items()}
"""Each provider's normalizer by name (kept for callers of 1.0)."""

__all__ = [
    "NORMALIZERS",
    "PROVIDERS",
    "Inbound",
    "MalformedBody",
    "Normalizer",
    "Provider",
    "ProviderName",
    "SignatureError",
    "Unmappable",
]
