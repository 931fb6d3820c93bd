"""Z-API-style callbacks (what PlugChat forwards for messages) → canonical events:
received messages (edits and revocations included), status, delivery, disconnection."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from relay.events import (
    Actor,
    Channel,
    CloudEvent,
    Contact,
    Conversation,
    EventData,
    EventType,
    Message,
    MessageError,
    MessageStatus,
)
from relay.providers.base import Inbound, Unmappable, body_digest, build_event
from relay.providers.coerce import as_bool, as_e164, as_str, as_time, first, get, get_list, get_str
from relay.providers.extensions import bounded, leftovers
from relay.providers.plugchat import content as contents

# Status words of *outgoing* messages (MessageStatusCallback, echoes). READ_BY_ME and
# READ-SELF say the business's own device read an incoming message: not the customer's
# read receipt, so they map to no canonical status (provider_status keeps the word).
STATUSES: dict[str, MessageStatus] = {
    "SENT": "sent",
    "SERVER_ACK": "sent",
    "RECEIVED": "delivered",
    "DELIVERED": "delivered",
    "DELIVERY_ACK": "delivered",
    "READ": "read",
    "PLAYED": "played",
    "FAILED": "failed",
    "ERROR": "failed",
}

# Top-level ReceivedCallback keys read into typed parts; the rest go to extensions.
_MESSAGE_KEYS = frozenset(
    {
        "type",
        "instanceId",
        "messageId",
        "id",
        "phone",
        "fromMe",
        "momment",
        "status",
        "chatName",
        "senderName",
        "senderPhoto",
        "photo",
        "participantPhone",
        "participantLid",
        "chatLid",
        "connectedPhone",
        "isGroup",
        "referenceMessageId",
        "waitingMessage",
        "isEdit",
        "externalAdReply",
    }
)


def chat_address(value: Any) -> tuple[str | None, str | None, str | None]:
    """A Z-API ``phone``: (raw id, E.164 phone or None, non-phone chat id or None)."""
    raw = as_str(value)
    if raw is None:
        return None, None, None
    raw = raw.strip()
    phone = as_e164(raw)
    return raw, phone, None if phone else raw


def status(value: Any) -> MessageStatus | None:
    text = as_str(value)
    return STATUSES.get(text.strip().upper().replace("-", "_")) if text else None


def contact(payload: Mapping[str, Any]) -> tuple[str | None, Contact]:
    """The customer's side of the chat: ``phone`` is the chat, whoever sent the message.

    For a message the business sent (``fromMe``), ``senderName``/``senderPhoto`` are the
    business's own; only ``chatName`` and ``photo`` describe the customer.
    """
    raw, phone, chat_id = chat_address(get(payload, "phone"))
    lid = get_str(payload, "chatLid")
    from_me = as_bool(get(payload, "fromMe")) or False
    is_group = as_bool(get(payload, "isGroup")) or (raw or "").endswith("-group")
    if is_group or from_me:
        name = get_str(payload, "chatName")
        avatar = get_str(payload, "photo")
    else:
        name = get_str(payload, "senderName", "chatName")
        avatar = get_str(payload, "photo", "senderPhoto")
    return raw, Contact(id=raw, name=name, phone=phone, chat_id=chat_id or lid, avatar_url=avatar)


def sender(payload: Mapping[str, Any], customer: Contact) -> Actor:
    if as_bool(get(payload, "fromMe")):
        automatic = as_bool(get(payload, "fromApi")) or as_bool(get(payload, "isAutomaticMessage"))
        return Actor(
            type="bot" if automatic else "agent",
            name=get_str(payload, "senderName"),
            phone=as_e164(get(payload, "connectedPhone")),
        )
    if as_bool(get(payload, "isGroup")) or (customer.id or "").endswith("-group"):
        participant = first(payload, "participantPhone", "participantLid")
        return Actor(
            type="contact",
            id=as_str(participant),
            name=get_str(payload, "senderName"),
            phone=as_e164(get(payload, "participantPhone")),
        )
    return Actor(type="contact", id=customer.id, name=customer.name, phone=customer.phone)


_PASSTHROUGH_ATTRIBUTES = frozenset(
    {
        "fromApi",
        "isGroup",
        "isEdit",
        "forwarded",
        "broadcast",
        "isAutomaticMessage",
        "isStatusReply",
        "notification",
        "notificationParameters",
    }
)


def message(
    payload: Mapping[str, Any],
    *,
    by: Actor | None,
    with_extension: bool = True,
    body_size: int | None = None,
) -> tuple[Message, dict[str, Any] | None]:
    """The canonical message and its extension (top-level and content leftovers)."""
    found, key = contents.content(payload)
    from_me = as_bool(get(payload, "fromMe")) or False
    status_raw = get_str(payload, "status")
    edited = as_bool(get(payload, "isEdit")) or None
    moment = as_time(get(payload, "momment"))
    # one pass over the body's keys, not one scan per flag looked for
    attributes = {
        name.strip(): value
        for name, value in payload.items()
        if value is not None and isinstance(name, str) and name.strip() in _PASSTHROUGH_ATTRIBUTES
    }
    built = Message(
        id=get_str(payload, "messageId", "id"),
        direction="outgoing" if from_me else "incoming",
        kind=found.kind,
        text=found.text,
        # An incoming message's RECEIVED is not a delivery receipt of ours.
        status=status(status_raw) if from_me else None,
        provider_status=status_raw,
        created_at=moment if not edited else None,
        updated_at=moment if edited else None,
        sender=by,
        media=found.media,
        location=found.location,
        shared_contact=found.shared_contacts[0] if found.shared_contacts else None,
        shared_contacts=found.shared_contacts,
        reaction=found.reaction,
        reply=found.reply,
        options=found.options,
        cards=found.cards,
        template=found.template,
        poll=found.poll,
        poll_vote=found.poll_vote,
        product=found.product,
        order=found.order,
        referral=contents.referral(payload),
        view_once=found.view_once,
        edited=edited,
        in_reply_to=get_str(payload, "referenceMessageId") or found.in_reply_to,
        attributes=attributes or None,
    )
    if not with_extension:
        return built, None
    known = _MESSAGE_KEYS if key is None else _MESSAGE_KEYS | {key.strip()}
    content_obj = get(payload, key) if key is not None else None
    extension = bounded(
        (
            ("message", leftovers(payload, known)),
            (
                "content",
                leftovers(content_obj, found.known) if isinstance(content_obj, Mapping) else None,
            ),
        ),
        body_size,
    )
    return built, extension


def _build(
    inbound: Inbound,
    *,
    type_: EventType,
    identity: str,
    time: str | None,
    chat: str | None,
    data: EventData,
) -> CloudEvent:
    return build_event(
        inbound,
        type_=type_,
        identity=identity,
        time=time,
        partition=chat,
        subject=f"conversation/{chat}" if chat else None,
        data=data,
    )


def _channel(payload: Mapping[str, Any], *, with_phone: bool = False) -> Channel | None:
    instance = get_str(payload, "instanceId")
    if instance is None:
        return None
    phone = as_e164(get(payload, "connectedPhone")) if with_phone else None
    return Channel(id=instance, phone=phone)


def received_event(inbound: Inbound, payload: Mapping[str, Any], event: str) -> list[CloudEvent]:
    chat, customer = contact(payload)
    built, extension = message(payload, by=sender(payload, customer), body_size=len(inbound.body))
    instance = get_str(payload, "instanceId") or ""
    type_: EventType = "chat.message.created"
    if built.kind == "revoked":
        type_ = "chat.message.deleted"
        identity = f"deleted:{instance}:{built.id}:{get_str(payload, 'momment') or ''}"
        time = built.created_at
        built = msgspec.structs.replace(built, created_at=None, updated_at=time)
    elif built.edited:
        type_ = "chat.message.updated"
        time = built.updated_at
        identity = f"edit:{instance}:{built.id}:{get_str(payload, 'momment') or ''}"
    else:
        time = built.created_at
        identity = f"message:{instance}:{built.id}"
    if built.id is None:
        identity = body_digest(inbound.body)
    data = EventData(
        provider="plugchat",
        source=inbound.source,
        provider_event=event,
        conversation=Conversation(id=chat, channel="whatsapp") if chat else None,
        message=built,
        contact=customer,
        actor=built.sender,
        channel=_channel(payload, with_phone=True),
        extensions={"plugchat": extension} if extension else None,
    )
    return [_build(inbound, type_=type_, identity=identity, time=time, chat=chat, data=data)]


def status_events(inbound: Inbound, payload: Mapping[str, Any], event: str) -> list[CloudEvent]:
    raw_ids = get_list(payload, "ids")
    if len(raw_ids) > inbound.max_events:
        # Refused before any event is built: one body must not become an unbounded burst.
        raise Unmappable(
            "too_many_events",
            f"status callback names {len(raw_ids)} messages; at most {inbound.max_events} "
            "events are made from one body",
        )
    ids = [i for i in (as_str(item) for item in raw_ids) if i]
    single = get_str(payload, "messageId", "id")
    if not ids and single:
        ids = [single]
    if not ids:
        raise Unmappable("unmappable", "status callback carries no message ids")
    chat, customer = chat_address(get(payload, "phone"))[0], contact(payload)[1]
    status_raw = get_str(payload, "status")
    canonical = status(status_raw)
    time = as_time(get(payload, "momment"))
    instance = get_str(payload, "instanceId")
    channel = Channel(id=instance) if instance else None
    conversation = Conversation(id=chat, channel="whatsapp") if chat else None
    events = []
    for message_id in ids:
        data = EventData(
            provider="plugchat",
            source=inbound.source,
            provider_event=event,
            conversation=conversation,
            message=Message(
                id=message_id, status=canonical, provider_status=status_raw, kind="status"
            ),
            contact=customer if chat else None,
            channel=channel,
        )
        events.append(
            _build(
                inbound,
                type_="chat.message.status_changed",
                identity=f"status:{instance or ''}:{message_id}:{status_raw or ''}:{time or ''}",
                time=time,
                chat=chat,
                data=data,
            )
        )
    return events


def _error(value: Any, code: Any) -> MessageError | None:
    if value is None or value is False:
        return None
    if isinstance(value, Mapping):
        return MessageError(
            code=get_str(value, "code", "errorCode") or as_str(code),
            detail=get_str(value, "message", "error", "detail"),
        )
    return MessageError(code=as_str(code), detail=as_str(value))


def delivery_event(
    inbound: Inbound, payload: Mapping[str, Any], event: str, kind: str
) -> list[CloudEvent]:
    chat, customer = contact(payload)
    code = get(payload, "errorCode")
    error = _error(get(payload, "error"), code)
    if error is None and code is not None:
        error = MessageError(code=as_str(code))
    failed = error is not None or (
        kind == "messageDeliveryError" and get(payload, "error") is not False
    )
    if failed and error is None:
        error = MessageError(detail="delivery failed")
    message_id = get_str(payload, "messageId", "zaapId", "id")
    instance = get_str(payload, "instanceId")
    type_: EventType = "chat.message.failed" if failed else "chat.message.status_changed"
    data = EventData(
        provider="plugchat",
        source=inbound.source,
        provider_event=event,
        conversation=Conversation(id=chat, channel="whatsapp") if chat else None,
        message=Message(
            id=message_id,
            direction="outgoing",
            kind="status",
            status="failed" if failed else "sent",
            error=error,
            attributes={"zaapId": zaap} if (zaap := get_str(payload, "zaapId")) else None,
        ),
        contact=customer if chat else None,
        channel=Channel(id=instance) if instance else None,
    )
    identity = (
        f"delivery:{instance or ''}:{message_id}" if message_id else body_digest(inbound.body)
    )
    time = as_time(get(payload, "momment"))
    return [_build(inbound, type_=type_, identity=identity, time=time, chat=chat, data=data)]


def disconnected_event(
    inbound: Inbound, payload: Mapping[str, Any], event: str
) -> list[CloudEvent]:
    instance = get_str(payload, "instanceId")
    data = EventData(
        provider="plugchat",
        source=inbound.source,
        provider_event=event,
        channel=Channel(
            id=instance,
            phone=as_e164(first(payload, "connectedPhone", "phone")),
            connected=False,
            error=get_str(payload, "error"),
        ),
    )
    return [
        build_event(
            inbound,
            type_="chat.channel.disconnected",
            identity=body_digest(inbound.body),
            time=as_time(get(payload, "momment")),
            partition=f"channel/{instance}" if instance else None,
            subject=f"channel/{instance}" if instance else None,
            data=data,
        )
    ]
