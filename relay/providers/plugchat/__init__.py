"""PlugChat (WhatsApp attendance) as one provider unit.

PlugChat registers one URL per kind and its bodies carry no event name. Message
callbacks follow Z-API's callback shapes and carry a ``type`` discriminator that, when
present, decides the builder; attendance bodies have none and the URL kind decides.

One normalizer, as Chatwoot's: one msgspec decode (:func:`relay.providers.base.parse_json`,
which reads what msgspec refuses, such as a lone surrogate, the tolerant way), then every
object read through :func:`relay.providers.fast.clean`.
"""

from __future__ import annotations

from typing import Any

from relay.events import CloudEvent
from relay.providers.base import (
    Inbound,
    Provider,
    Unmappable,
    parse_json,
    parse_json_keeping_duplicates,
    require_object,
)
from relay.providers.coerce import forget_indexes
from relay.providers.plugchat.attendance import lost_transcript_entries
from relay.providers.plugchat.builders import ATTENDANCE_KINDS, build

KINDS = (
    "startAttendance",
    "finishAttendance",
    "receiveMessage",
    "sendingMessage",
    "messageDeliveryError",
    "messageStatus",
    "whenDisconnecting",
)
_KINDS = frozenset(KINDS)
_KIND_BY_FOLDED = {kind.lower(): kind for kind in KINDS}


def canonical_kind(kind: str) -> str | None:
    """``finishAttendance``, ``finish-attendance``, ``finish_attendance`` → ``finishAttendance``."""
    if kind in _KINDS:  # as registered: what nearly every request says
        return kind
    return _KIND_BY_FOLDED.get(kind.replace("-", "").replace("_", "").lower())


def normalize(inbound: Inbound) -> list[CloudEvent]:
    """A PlugChat body as canonical events."""
    kind = canonical_kind(inbound.kind or "")
    if kind is None:
        raise Unmappable("unknown_kind", f"unknown PlugChat kind {inbound.kind!r}")
    try:
        payload = require_object(parse_json(inbound.body))
        if kind in ATTENDANCE_KINDS and lost_transcript_entries(payload, inbound.body):
            # transcript entries that shared a key were merged: parsed again, keeping them
            payload = require_object(parse_json_keeping_duplicates(inbound.body))
        return build(inbound, payload, kind)
    finally:
        # the padded-key indexes of large objects must not keep the body alive past the
        # request
        forget_indexes()


WEBHOOK_MESSAGE: dict[str, Any] = {
    "name": "PlugchatWebhook",
    "title": "PlugChat webhook",
    "summary": "A PlugChat callback: attendance bodies, or Z-API-style callbacks with a type.",
    "contentType": "application/json",
    "payload": {"type": "object"},
}

PROVIDER = Provider(
    name="plugchat",
    title="PlugChat",
    normalize=normalize,
    kinds=KINDS,
    canonical_kind=canonical_kind,
    register_example_url="https://www.plugchat.com.br",
    webhook_message=WEBHOOK_MESSAGE,
)

__all__ = ["KINDS", "PROVIDER", "canonical_kind", "normalize"]
