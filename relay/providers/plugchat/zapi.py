"""Z-API-style callbacks (what PlugChat forwards for messages) → canonical events:
received messages (edits and revocations included), status, delivery, disconnection.

Every builder gets the body as sent and cleaned (:func:`relay.providers.fast.clean`);
the message itself is :mod:`relay.providers.plugchat.message`'s.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec.structs import replace

from relay.events import (
    Channel,
    CloudEvent,
    Conversation,
    EventData,
    EventType,
    Message,
    MessageError,
    event_id,
)
from relay.providers.base import Inbound, Unmappable, body_digest, build_event
from relay.providers.coerce import as_str
from relay.providers.fast import clean
from relay.providers.plugchat.message import contact, flags, message, sender, status
from relay.providers.plugchat.reading import Body, View, moment, phone_of, text


def event(
    inbound: Inbound,
    type_: EventType,
    key: str,
    time: str | None,
    data: EventData,
    chat: str | None,
    subject: str | None = None,
) -> CloudEvent:
    """The envelope: ``key`` says what the event is (its id hashes it), ``chat`` keys the
    partition, and the subject is ``conversation/<chat>`` unless told."""
    if subject is None and chat:
        subject = f"conversation/{chat}"
    return build_event(
        inbound, type_=type_, identity=key, time=time, partition=chat, subject=subject, data=data
    )


def received_event(
    inbound: Inbound, payload: Body, view: View, event_name: str, kind: str
) -> list[CloudEvent]:
    from_me, group = flags(view)
    chat, customer = contact(view, from_me, group)
    by = sender(view, customer, from_me, group)
    built, extension = message(payload, view, by=by, from_me=from_me, body_size=len(inbound.body))
    instance = text(view, "instanceId")
    type_: EventType = "chat.message.created"
    if built.kind == "revoked":
        type_ = "chat.message.deleted"
        identity = f"deleted:{instance or ''}:{built.id}:{text(view, 'momment') or ''}"
        time = built.created_at
        built = msgspec.structs.replace(built, created_at=None, updated_at=time)
    elif built.edited:
        type_ = "chat.message.updated"
        time = built.updated_at
        identity = f"edit:{instance or ''}:{built.id}:{text(view, 'momment') or ''}"
    else:
        time = built.created_at
        identity = f"message:{instance or ''}:{built.id}"
    if built.id is None:
        identity = body_digest(inbound.body)
    data = EventData(
        provider="plugchat",
        source=inbound.source,
        provider_event=event_name,
        conversation=Conversation(id=chat, channel="whatsapp") if chat else None,
        message=built,
        contact=customer,
        actor=built.sender,
        channel=Channel(id=instance, phone=phone_of(view.get("connectedPhone")))
        if instance is not None
        else None,
        extensions={"plugchat": extension} if extension else None,
    )
    return [event(inbound, type_, identity, time, data, chat)]


def status_events(
    inbound: Inbound, payload: Body, view: View, event_name: str, kind: str
) -> list[CloudEvent]:
    raw_ids = view.get("ids")  # texts (refused unread if too many)
    if type(raw_ids) is not list:
        raw_ids = []
    if len(raw_ids) > inbound.max_events:
        # Refused before any event is built: one body must not become an unbounded burst.
        raise Unmappable(
            "too_many_events",
            f"status callback names {len(raw_ids)} messages; at most {inbound.max_events} "
            "events are made from one body",
        )
    ids = [i for i in map(as_str, raw_ids) if i]
    if not ids:
        single = text(view, "messageId", "id")
        if single is None:
            raise Unmappable("unmappable", "status callback carries no message ids")
        ids = [single]
    chat, customer = contact(view, *flags(view))
    status_raw = text(view, "status")
    canonical = status(status_raw)
    time = moment(view.get("momment"))
    instance = text(view, "instanceId")
    channel = Channel(id=instance) if instance else None
    conversation = Conversation(id=chat, channel="whatsapp") if chat else None
    who = customer if chat else None
    # the same parts for every id: only the message and the event id differ, so the
    # first event is built and the others are copies of it with those two replaced
    prefix = f"status:{instance or ''}:"
    suffix = f":{status_raw or ''}:{time or ''}"
    first_id = ids[0]
    first_message = Message(
        id=first_id, status=canonical, provider_status=status_raw, kind="status"
    )
    data = EventData(
        provider="plugchat",
        source=inbound.source,
        provider_event=event_name,
        conversation=conversation,
        message=first_message,
        contact=who,
        channel=channel,
    )
    first = event(
        inbound, "chat.message.status_changed", prefix + first_id + suffix, time, data, chat
    )
    source = inbound.source
    return [first] + [
        replace(
            first,
            id=event_id(source, "chat.message.status_changed", prefix + message_id + suffix),
            data=replace(data, message=replace(first_message, id=message_id)),
        )
        for message_id in ids[1:]
    ]


_ERROR_KEYS = frozenset({"code", "errorCode", "message", "error", "detail"})


def _error(value: Any, code: Any) -> MessageError | None:
    if value is None or value is False:
        return None
    if type(value) is dict:
        view = clean(value, _ERROR_KEYS)
        return MessageError(
            code=text(view, "code", "errorCode") or as_str(code),
            detail=text(view, "message", "error", "detail"),
        )
    return MessageError(code=as_str(code), detail=as_str(value))


def delivery_event(
    inbound: Inbound, payload: Body, view: View, event_name: str, kind: str
) -> list[CloudEvent]:
    get = view.get
    chat, customer = contact(view, *flags(view))
    code = get("errorCode")
    error = _error(get("error"), code)
    if error is None and code is not None:
        error = MessageError(code=as_str(code))
    failed = error is not None or (kind == "messageDeliveryError" and get("error") is not False)
    if failed and error is None:
        error = MessageError(detail="delivery failed")
    message_id = text(view, "messageId", "zaapId", "id")
    instance = text(view, "instanceId")
    type_: EventType = "chat.message.failed" if failed else "chat.message.status_changed"
    data = EventData(
        provider="plugchat",
        source=inbound.source,
        provider_event=event_name,
        conversation=Conversation(id=chat, channel="whatsapp") if chat else None,
        message=Message(
            id=message_id,
            direction="outgoing",
            kind="status",
            status="failed" if failed else "sent",
            error=error,
            attributes={"zaapId": zaap} if (zaap := text(view, "zaapId")) else None,
        ),
        contact=customer if chat else None,
        channel=Channel(id=instance) if instance else None,
    )
    identity = (
        f"delivery:{instance or ''}:{message_id}" if message_id else body_digest(inbound.body)
    )
    time = moment(get("momment"))
    return [event(inbound, type_, identity, time, data, chat)]


def disconnected_event(
    inbound: Inbound, payload: Body, view: View, event_name: str, kind: str
) -> list[CloudEvent]:
    get = view.get
    instance = text(view, "instanceId")
    phone = get("connectedPhone")
    channel = Channel(
        id=instance,
        phone=phone_of(phone if phone is not None else get("phone")),
        connected=False,
        error=text(view, "error"),
    )
    data = EventData(
        provider="plugchat", source=inbound.source, provider_event=event_name, channel=channel
    )
    # one event per instance's disconnection: the body itself says which
    at = f"channel/{instance}" if instance else None
    time = moment(get("momment"))
    return [
        event(inbound, "chat.channel.disconnected", body_digest(inbound.body), time, data, at, at)
    ]
