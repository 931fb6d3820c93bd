"""Builders of events and records shared by the tests (tests import this, not each other)."""

from __future__ import annotations

import json

from relay.bus import Record
from relay.cloudevents import encode
from relay.events import CloudEvent
from relay.providers import NORMALIZERS, Inbound


def chat_event(conversation: int, message: int, direction: str = "incoming") -> CloudEvent:
    """A canonical Chatwoot ``message_created``; its key is the conversation."""
    body = {
        "event": "message_created",
        "id": message,
        "content": f"message {message}",
        "message_type": direction,
        "account": {"id": 1},
        "conversation": {"id": conversation},
    }
    inbound = Inbound(source="nexloo", body=json.dumps(body).encode(), received_at="-")
    [event] = NORMALIZERS["chatwoot"](inbound)
    return event


def records(topic: str, events: list[CloudEvent]) -> list[Record]:
    """Structured-mode records of ``events`` on ``topic``, keyed as relay keys them."""
    return [
        Record(topic=topic, value=encode(e), key=e.partitionkey.encode(), headers=())
        for e in events
    ]
