"""Chatwoot and its white-labels (Nexloo, Trino AI, ...) as one provider unit."""

from __future__ import annotations

from typing import Any

from relay.events import CloudEvent
from relay.providers.base import Inbound, Provider
from relay.providers.chatwoot.fast import decode
from relay.providers.chatwoot.normalize import (
    AUTOMATION_PREFIX,
    EVENT_TYPES,
    event_type_for,
    normalize_payload,
    normalize_tolerant,
)
from relay.providers.chatwoot.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from relay.providers.chatwoot.typed import NotTyped, typed_reader
from relay.providers.coerce import forget_indexes
from relay.providers.fast import FALLBACK_ERRORS

DELIVERY_HEADER = "X-Chatwoot-Delivery"


def normalize(inbound: Inbound) -> list[CloudEvent]:
    """A Chatwoot body as canonical events: the typed path for the message, conversation
    and contact bodies it models, the dict path for the rest, the tolerant readers for what
    msgspec will not decode (the same events any way)."""
    # fast_or_tolerant(normalize_fast, normalize_tolerant, inbound), two calls fewer
    try:
        typed = typed_reader(inbound.body)
        if typed is not None:
            try:
                return typed(inbound)
            except (NotTyped, *FALLBACK_ERRORS):
                pass
        return normalize_payload(inbound, decode(inbound.body))
    except FALLBACK_ERRORS:
        return normalize_tolerant(inbound, None)
    finally:
        forget_indexes()


WEBHOOK_MESSAGE: dict[str, Any] = {
    "name": "ChatwootWebhook",
    "title": "Chatwoot webhook",
    "summary": "A Chatwoot (or white-label) webhook; the body's event names it.",
    "contentType": "application/json",
    "headers": {
        "type": "object",
        "properties": {
            SIGNATURE_HEADER: {
                "type": "string",
                "description": (
                    "sha256=<hex HMAC-SHA256 of '<timestamp>.<raw body>'>, verified "
                    "when the source has a signing_secret."
                ),
            },
            TIMESTAMP_HEADER: {"type": "string", "description": "Unix seconds of the signature."},
            DELIVERY_HEADER: {
                "type": "string",
                "description": "A UUID per delivery; kept as the event's providerdelivery.",
            },
        },
        "required": [],
    },
    "payload": {
        "type": "object",
        "required": ["event"],
        "properties": {
            "event": {
                "type": "string",
                "examples": [*EVENT_TYPES, f"{AUTOMATION_PREFIX}message_created"],
            }
        },
    },
}

PROVIDER = Provider(
    name="chatwoot",
    title="Chatwoot",
    normalize=normalize,
    verify=verify,
    signature_headers={"signature": SIGNATURE_HEADER, "timestamp": TIMESTAMP_HEADER},
    delivery_header=DELIVERY_HEADER,
    register_example_url="https://chat.example.com",
    register_needs_account=True,
    webhook_message=WEBHOOK_MESSAGE,
)

__all__ = ["AUTOMATION_PREFIX", "EVENT_TYPES", "PROVIDER", "event_type_for", "normalize"]
