"""Which builder makes a PlugChat body's events: the body's ``type`` (a Z-API callback)
when it has one, else the URL kind."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from relay.events import CloudEvent
from relay.providers.base import Inbound, Unmappable
from relay.providers.coerce import as_str
from relay.providers.plugchat import attendance, zapi
from relay.providers.plugchat.message import view_of

ATTENDANCE_KINDS = frozenset({"startAttendance", "finishAttendance"})

Builder = Callable[[Inbound, dict[str, Any], Mapping[str, Any], str, str], list[CloudEvent]]
"""``build(inbound, body as sent, body cleaned, the event's name, the URL kind)``; only a
delivery callback's meaning depends on the URL kind (``messageDeliveryError`` says it
failed)."""


def _received_by_kind(
    inbound: Inbound, payload: dict[str, Any], view: Mapping[str, Any], event: str, kind: str
) -> list[CloudEvent]:
    if view.get("messageId") is None:
        raise Unmappable("unmappable", f"{kind} body has neither `type` nor `messageId`")
    return zapi.received_event(inbound, payload, view, event, kind)


# A body's `type` (compared case-insensitively) decides its builder ...
CALLBACKS: dict[str, Builder] = {
    "receivedcallback": zapi.received_event,
    "messagestatuscallback": zapi.status_events,
    "deliverycallback": zapi.delivery_event,
    "disconnectedcallback": zapi.disconnected_event,
}
# ... and the URL kind decides for bodies without one.
BY_KIND: dict[str, Builder] = {
    "receiveMessage": _received_by_kind,
    "sendingMessage": _received_by_kind,
    "messageStatus": zapi.status_events,
    "messageDeliveryError": zapi.delivery_event,
    "whenDisconnecting": zapi.disconnected_event,
}


def build(inbound: Inbound, payload: dict[str, Any], kind: str) -> list[CloudEvent]:
    """The events of a decoded body that came on the URL ``kind`` (canonical spelling)."""
    view = view_of(payload)
    callback = as_str(view.get("type"))
    if callback is not None:
        builder = CALLBACKS.get(callback.lower())
        if builder is None:
            raise Unmappable("unknown_type", f"unknown callback type {callback!r} on {kind}")
        return builder(inbound, payload, view, callback, kind)
    if kind in ATTENDANCE_KINDS or type(view.get("attendance")) is dict:
        return attendance.attendance_event(inbound, view, kind)
    return BY_KIND[kind](inbound, payload, view, kind, kind)
