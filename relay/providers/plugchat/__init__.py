"""PlugChat (WhatsApp attendance) as one provider unit.

PlugChat registers one URL per kind and its bodies carry no event name. Message
callbacks follow Z-API's callback shapes and carry a ``type`` discriminator that, when
present, decides the builder; attendance bodies have none and the URL kind decides.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
from relay.providers.plugchat import attendance, zapi
from relay.values import as_str, forget_indexes, get

KINDS = (
    "startAttendance",
    "finishAttendance",
    "receiveMessage",
    "sendingMessage",
    "messageDeliveryError",
    "messageStatus",
    "whenDisconnecting",
)
_KIND_BY_FOLDED = {kind.lower(): kind for kind in KINDS}
_ATTENDANCE_KINDS = frozenset({"startAttendance", "finishAttendance"})


def canonical_kind(kind: str) -> str | None:
    """``finishAttendance``, ``finish-attendance``, ``finish_attendance`` → ``finishAttendance``."""
    return _KIND_BY_FOLDED.get(kind.replace("-", "").replace("_", "").lower())


def _lost_transcript_entries(payload: Mapping[str, Any], body: bytes) -> bool:
    """Did the fast parse drop transcript entries that shared a key (seed bodies repeat
    ``"ID_DA_MENSAGEM"``)? Then the body is parsed again keeping duplicates.

    Every transcript entry carries ``messageId`` or ``momment``: if the body holds more of
    those than the ``chat`` object has entries, some may have been merged (or they are
    nested deeper, e.g. a quoted message; re-parsing is then merely slower, never wrong).
    """
    chat = get(payload, "chat")
    if not isinstance(chat, Mapping):
        return False
    mentions = max(body.count(b'"messageId"'), body.count(b'"momment"'))
    return mentions > len(chat)


Builder = Callable[[Inbound, Mapping[str, Any], str, str], list[CloudEvent]]


def _received(
    inbound: Inbound, payload: Mapping[str, Any], event: str, kind: str
) -> list[CloudEvent]:
    return zapi.received_event(inbound, payload, event)


def _status(
    inbound: Inbound, payload: Mapping[str, Any], event: str, kind: str
) -> list[CloudEvent]:
    return zapi.status_events(inbound, payload, event)


def _disconnected(
    inbound: Inbound, payload: Mapping[str, Any], event: str, kind: str
) -> list[CloudEvent]:
    return zapi.disconnected_event(inbound, payload, event)


def _received_by_kind(
    inbound: Inbound, payload: Mapping[str, Any], event: str, kind: str
) -> list[CloudEvent]:
    if get(payload, "messageId") is None:
        raise Unmappable("unmappable", f"{kind} body has neither `type` nor `messageId`")
    return zapi.received_event(inbound, payload, event)


# A body's `type` (compared case-insensitively) decides its builder ...
CALLBACKS: dict[str, Builder] = {
    "receivedcallback": _received,
    "messagestatuscallback": _status,
    "deliverycallback": zapi.delivery_event,
    "disconnectedcallback": _disconnected,
}
# ... and the URL kind decides for bodies without one.
BY_KIND: dict[str, Builder] = {
    "receiveMessage": _received_by_kind,
    "sendingMessage": _received_by_kind,
    "messageStatus": _status,
    "messageDeliveryError": zapi.delivery_event,
    "whenDisconnecting": _disconnected,
}


def normalize(inbound: Inbound) -> list[CloudEvent]:
    try:
        return _normalize(inbound)
    finally:
        forget_indexes()


def _normalize(inbound: Inbound) -> list[CloudEvent]:
    kind = canonical_kind(inbound.kind or "")
    if kind is None:
        raise Unmappable("unknown_kind", f"unknown PlugChat kind {inbound.kind!r}")
    payload = require_object(parse_json(inbound.body))
    if kind in _ATTENDANCE_KINDS and _lost_transcript_entries(payload, inbound.body):
        payload = require_object(parse_json_keeping_duplicates(inbound.body))
    callback = as_str(get(payload, "type"))
    if callback is not None:
        builder = CALLBACKS.get(callback.lower())
        if builder is None:
            raise Unmappable("unknown_type", f"unknown callback type {callback!r} on {kind}")
        return builder(inbound, payload, callback, kind)
    if kind in _ATTENDANCE_KINDS or isinstance(get(payload, "attendance"), Mapping):
        return attendance.attendance_event(inbound, payload, kind)
    return BY_KIND[kind](inbound, payload, kind, kind)


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
