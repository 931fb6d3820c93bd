"""Provider dialects: each turns a received webhook body into canonical events."""

from relay.providers import chatwoot, plugchat
from relay.providers.base import Inbound, MalformedBody, Normalizer, Unmappable

NORMALIZERS: dict[str, Normalizer] = {
    "chatwoot": chatwoot.normalize,
    "plugchat": plugchat.normalize,
}

__all__ = ["NORMALIZERS", "Inbound", "MalformedBody", "Normalizer", "Unmappable"]
