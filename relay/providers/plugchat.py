"""PlugChat (WhatsApp attendance) webhooks → canonical events.

PlugChat registers one URL per kind and its bodies carry no event name. Message
callbacks follow Z-API's callback shapes and carry a ``type`` discriminator that,
when present, decides the canonical type; attendance bodies have none and the URL
kind decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relay.events import (
    Actor,
    Attendance,
    Category,
    Channel,
    CloudEvent,
    Contact,
    Conversation,
    ConversationStatus,
    EventData,
    EventType,
    Location,
    Media,
    Message,
    MessageStatus,
    Reaction,
    Reply,
    SharedContact,
)
from relay.providers.base import (
    Inbound,
    Unmappable,
    body_digest,
    build_event,
    parse_json,
    parse_json_keeping_duplicates,
    require_object,
)
from relay.values import (
    as_bool,
    as_e164,
    as_float,
    as_str,
    as_time,
    first,
    get,
    get_list,
    get_obj,
    get_str,
)

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
_ATTENDANCE_KINDS = {"startAttendance", "finishAttendance"}


def canonical_kind(kind: str) -> str | None:
    """``finishAttendance``, ``finish-attendance``, ``finish_attendance`` → ``finishAttendance``."""
    return _KIND_BY_FOLDED.get(kind.replace("-", "").replace("_", "").lower())


_CALLBACK_TYPES = {
    "receivedcallback": "received",
    "messagestatuscallback": "status",
    "deliverycallback": "delivery",
    "disconnectedcallback": "disconnected",
}
_MESSAGE_STATUSES: dict[str, MessageStatus] = {
    "SENT": "sent",
    "SERVER_ACK": "sent",
    "RECEIVED": "delivered",
    "DELIVERED": "delivered",
    "DELIVERY_ACK": "delivered",
    "READ": "read",
    "READ_BY_ME": "read",
    "READ-BY-ME": "read",
    "READ-SELF": "read",
    "PLAYED": "played",
    "FAILED": "failed",
    "ERROR": "failed",
}
_ATTENDANCE_STATUSES: dict[str, ConversationStatus] = {
    "PROGRESS": "open",
    "IN_PROGRESS": "open",
    "OPEN": "open",
    "WAITING": "pending",
    "PENDING": "pending",
    "FINISH": "resolved",
    "FINISHED": "resolved",
    "CLOSED": "resolved",
}
# Content keys of a received message, in the order they are looked for.
_CONTENT_KEYS = (
    "text",
    "image",
    "audio",
    "video",
    "document",
    "location",
    "contact",
    "sticker",
    "reaction",
    "buttonsResponseMessage",
    "listResponseMessage",
    "buttonsMessage",
    "templateMessage",
    "hydratedTemplate",
    "poll",
    "pollVote",
    "product",
    "order",
    "gif",
    "ptv",
    "event",
    "notification",
)
_CONTENT_KIND = {
    "buttonsResponseMessage": "button_reply",
    "listResponseMessage": "list_reply",
    "buttonsMessage": "buttons",
    "templateMessage": "template",
    "hydratedTemplate": "template",
    "pollVote": "poll_vote",
    "ptv": "video",
    "gif": "video",
}
_MEDIA_URL_KEYS = (
    "imageUrl",
    "audioUrl",
    "videoUrl",
    "documentUrl",
    "stickerUrl",
    "gifUrl",
    "ptvUrl",
    "url",
)


def normalize(inbound: Inbound) -> list[CloudEvent]:
    kind = canonical_kind(inbound.kind or "")
    if kind is None:
        raise Unmappable("unknown_kind", f"unknown PlugChat kind {inbound.kind!r}")
    parse = parse_json_keeping_duplicates if kind in _ATTENDANCE_KINDS else parse_json
    payload = require_object(parse(inbound.body))
    callback = as_str(get(payload, "type"))
    if callback is not None:
        shape = _CALLBACK_TYPES.get(callback.lower())
        if shape is None:
            raise Unmappable("unknown_type", f"unknown callback type {callback!r} on {kind}")
    elif kind in _ATTENDANCE_KINDS or isinstance(get(payload, "attendance"), Mapping):
        return [_attendance_event(inbound, payload, kind)]
    else:
        shape = _shape_from_kind(kind, payload)
    if shape == "received":
        return [_received_event(inbound, payload, callback or kind)]
    if shape == "status":
        return _status_events(inbound, payload, callback or kind)
    if shape == "delivery":
        return [_delivery_event(inbound, payload, callback or kind, kind)]
    return [_disconnected_event(inbound, payload, callback or kind)]


def _shape_from_kind(kind: str, payload: Mapping[str, Any]) -> str:
    """For a body without ``type``: what its URL kind says it is."""
    if kind in ("receiveMessage", "sendingMessage"):
        if get(payload, "messageId") is None:
            raise Unmappable("unmappable", f"{kind} body has neither `type` nor `messageId`")
        return "received"
    if kind == "messageStatus":
        return "status"
    if kind == "messageDeliveryError":
        return "delivery"
    return "disconnected"


def _chat_address(value: Any) -> tuple[str | None, str | None, str | None]:
    """A Z-API ``phone``: (raw id, E.164 phone or None, non-phone chat id or None)."""
    raw = as_str(value)
    if raw is None:
        return None, None, None
    raw = raw.strip()
    phone = as_e164(raw)
    return raw, phone, None if phone else raw


def _status(value: Any) -> MessageStatus | None:
    text = as_str(value)
    return _MESSAGE_STATUSES.get(text.strip().upper()) if text else None


def _content(payload: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    for key in _CONTENT_KEYS:
        value = get(payload, key)
        if isinstance(value, Mapping):
            return _CONTENT_KIND.get(key, key), value
    if as_bool(get(payload, "waitingMessage")):
        return "waiting", {}
    if get(payload, "notification") is not None:
        return "notification", {}
    return "unknown", {}


def _media(kind: str, content: Mapping[str, Any]) -> list[Media]:
    if kind not in ("image", "audio", "video", "document", "sticker"):
        return []
    url = first(content, *_MEDIA_URL_KEYS)
    size = get(content, "fileSize")
    return [
        Media(
            url=as_str(url),
            mime_type=get_str(content, "mimeType"),
            file_name=get_str(content, "fileName", "title"),
            caption=get_str(content, "caption"),
            size=size if isinstance(size, int) and not isinstance(size, bool) else None,
            thumbnail_url=get_str(content, "thumbnailUrl"),
        )
    ]


def _text(kind: str, content: Mapping[str, Any]) -> str | None:
    if kind in ("text", "button_reply", "list_reply"):
        return get_str(content, "message")
    if kind in ("image", "video", "document"):
        return get_str(content, "caption")
    if kind == "poll":
        return get_str(content, "question")
    return None


_PASSTHROUGH_ATTRIBUTES = (
    "fromApi",
    "isGroup",
    "isEdit",
    "forwarded",
    "broadcast",
    "isAutomaticMessage",
    "isStatusReply",
    "notification",
    "notificationParameters",
)


def _message(payload: Mapping[str, Any], *, sender: Actor | None) -> Message:
    kind, content = _content(payload)
    from_me = as_bool(get(payload, "fromMe")) or False
    status_raw = get_str(payload, "status")
    location = None
    if kind == "location":
        location = Location(
            latitude=as_float(get(content, "latitude")),
            longitude=as_float(get(content, "longitude")),
            name=get_str(content, "name"),
            address=get_str(content, "address"),
            url=get_str(content, "url"),
        )
    shared = None
    if kind == "contact":
        phones = [p for p in (as_str(item) for item in get_list(content, "phones")) if p]
        shared = SharedContact(
            name=get_str(content, "displayName", "name"),
            phones=[as_e164(p) or p for p in phones],
            vcard=get_str(content, "vCard", "vcard"),
        )
    reaction = None
    if kind == "reaction":
        reaction = Reaction(
            emoji=get_str(content, "value"),
            message_id=get_str(get_obj(content, "referencedMessage"), "messageId"),
        )
    reply = None
    if kind == "button_reply":
        reply = Reply(id=get_str(content, "buttonId"), title=get_str(content, "message"))
    elif kind == "list_reply":
        reply = Reply(id=get_str(content, "selectedRowId"), title=get_str(content, "title"))
    attributes = {
        key: value for key in _PASSTHROUGH_ATTRIBUTES if (value := get(payload, key)) is not None
    }
    return Message(
        id=get_str(payload, "messageId", "id"),
        direction="outgoing" if from_me else "incoming",
        kind=kind,
        text=_text(kind, content),
        status=_status(status_raw),
        provider_status=status_raw,
        created_at=as_time(get(payload, "momment")),
        sender=sender,
        media=_media(kind, content),
        location=location,
        shared_contact=shared,
        reaction=reaction,
        reply=reply,
        in_reply_to=get_str(payload, "referenceMessageId"),
        attributes=attributes or None,
    )


def _sender(payload: Mapping[str, Any], contact: Contact) -> Actor:
    if as_bool(get(payload, "fromMe")):
        automatic = as_bool(get(payload, "fromApi")) or as_bool(get(payload, "isAutomaticMessage"))
        return Actor(
            type="bot" if automatic else "agent", phone=as_e164(get(payload, "connectedPhone"))
        )
    if as_bool(get(payload, "isGroup")):
        participant = first(payload, "participantPhone", "participantLid")
        return Actor(
            type="contact",
            id=as_str(participant),
            name=get_str(payload, "senderName"),
            phone=as_e164(get(payload, "participantPhone")),
        )
    return Actor(type="contact", id=contact.id, name=contact.name, phone=contact.phone)


def _contact(payload: Mapping[str, Any]) -> tuple[str | None, Contact]:
    raw, phone, chat_id = _chat_address(get(payload, "phone"))
    lid = get_str(payload, "chatLid")
    is_group = as_bool(get(payload, "isGroup")) or (raw or "").endswith("-group")
    name = get_str(payload, "chatName") if is_group else get_str(payload, "senderName", "chatName")
    return raw, Contact(
        id=raw,
        name=name,
        phone=phone,
        chat_id=chat_id or lid,
        avatar_url=get_str(payload, "photo", "senderPhoto"),
    )


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


def _received_event(inbound: Inbound, payload: Mapping[str, Any], event: str) -> CloudEvent:
    chat, contact = _contact(payload)
    message = _message(payload, sender=_sender(payload, contact))
    instance = get_str(payload, "instanceId")
    data = EventData(
        provider="plugchat",
        source=inbound.source,
        provider_event=event,
        conversation=Conversation(id=chat, channel="whatsapp") if chat else None,
        message=message,
        contact=contact,
        actor=message.sender,
        channel=Channel(id=instance, phone=as_e164(get(payload, "connectedPhone")))
        if instance
        else None,
    )
    identity = f"message:{instance or ''}:{message.id}" if message.id else body_digest(inbound.body)
    return _build(
        inbound,
        type_="chat.message.created",
        identity=identity,
        time=message.created_at,
        chat=chat,
        data=data,
    )


def _status_events(inbound: Inbound, payload: Mapping[str, Any], event: str) -> list[CloudEvent]:
    ids = [i for i in (as_str(item) for item in get_list(payload, "ids")) if i]
    single = get_str(payload, "messageId", "id")
    if not ids and single:
        ids = [single]
    if not ids:
        raise Unmappable("unmappable", "status callback carries no message ids")
    chat, contact = _contact(payload)
    status_raw = get_str(payload, "status")
    status = _status(status_raw)
    time = as_time(get(payload, "momment"))
    instance = get_str(payload, "instanceId")
    events = []
    for message_id in ids:
        data = EventData(
            provider="plugchat",
            source=inbound.source,
            provider_event=event,
            conversation=Conversation(id=chat, channel="whatsapp") if chat else None,
            message=Message(
                id=message_id,
                status=status,
                provider_status=status_raw,
                kind="status",
            ),
            contact=contact if chat else None,
            channel=Channel(id=instance) if instance else None,
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


def _delivery_event(
    inbound: Inbound, payload: Mapping[str, Any], event: str, kind: str
) -> CloudEvent:
    chat, contact = _contact(payload)
    error_value = get(payload, "error")
    error = (
        as_str(error_value)
        if not isinstance(error_value, Mapping)
        else (get_str(error_value, "message", "error") or "error")
    )
    failed = error is not None or (kind == "messageDeliveryError" and error_value is not False)
    message_id = get_str(payload, "messageId", "zaapId", "id")
    instance = get_str(payload, "instanceId")
    type_: EventType = "chat.message.failed" if failed else "chat.message.status_changed"
    time = as_time(get(payload, "momment"))
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
            error=(error or "delivery failed") if failed else None,
            attributes={"zaapId": zaap} if (zaap := get_str(payload, "zaapId")) else None,
        ),
        contact=contact if chat else None,
        channel=Channel(id=instance) if instance else None,
    )
    identity = (
        f"delivery:{instance or ''}:{message_id}" if message_id else body_digest(inbound.body)
    )
    return _build(inbound, type_=type_, identity=identity, time=time, chat=chat, data=data)


def _disconnected_event(inbound: Inbound, payload: Mapping[str, Any], event: str) -> CloudEvent:
    instance = get_str(payload, "instanceId")
    phone = as_e164(first(payload, "connectedPhone", "phone"))
    data = EventData(
        provider="plugchat",
        source=inbound.source,
        provider_event=event,
        channel=Channel(
            id=instance,
            phone=phone,
            connected=False,
            error=get_str(payload, "error"),
        ),
    )
    return build_event(
        inbound,
        type_="chat.channel.disconnected",
        identity=body_digest(inbound.body),
        time=as_time(get(payload, "momment")),
        partition=f"channel/{instance}" if instance else None,
        subject=f"channel/{instance}" if instance else None,
        data=data,
    )


def _categories(attendance: Mapping[str, Any]) -> list[Category]:
    """Both formats: ``attendanceCategory`` (one object) and ``attendanceCategories`` (a list)."""
    found: list[Category] = []
    for key in ("attendanceCategories", "attendanceCategory"):
        value = get(attendance, key)
        items = value if isinstance(value, list) else [value]
        for item in items:
            if not isinstance(item, Mapping) or not item:
                continue
            category = Category(
                id=get_str(item, "categoryId", "id"),
                name=get_str(item, "categoryName", "name"),
                color=get_str(item, "color"),
                item_id=get_str(item, "itemId"),
                item_name=get_str(item, "itemName"),
            )
            # the single legacy category repeats one of the list's, without its item
            if not any(
                (c.id, c.name) == (category.id, category.name)
                and (category.item_id is None or c.item_id == category.item_id)
                for c in found
            ):
                found.append(category)
    return found


def _transcript(chat: Any) -> list[Message]:
    """The attendance's ``chat``: an object of message id → Z-API message (or a list)."""
    items = (
        list(chat.values()) if isinstance(chat, Mapping) else chat if isinstance(chat, list) else []
    )
    messages: list[tuple[float, int, Message]] = []
    for position, item in enumerate(items):
        if not isinstance(item, Mapping):
            continue
        _, contact = _contact(item)
        message = _message(item, sender=_sender(item, contact))
        moment = as_float(get(item, "momment"))
        messages.append((moment if moment is not None else float("inf"), position, message))
    messages.sort(key=lambda entry: (entry[0], entry[1]))
    return [message for _, _, message in messages]


def _attendance_event(inbound: Inbound, payload: Mapping[str, Any], kind: str) -> CloudEvent:
    attendance_obj = get_obj(payload, "attendance")
    if not attendance_obj:
        raise Unmappable("unmappable", f"{kind} body has no `attendance` object")
    customer = get_obj(attendance_obj, "customer")
    phone_raw, phone, chat_id = _chat_address(get(customer, "phone"))
    number = get_str(attendance_obj, "attendanceNumber", "number", "id")
    status_raw = get_str(attendance_obj, "status")
    status = _ATTENDANCE_STATUSES.get(status_raw.strip().upper()) if status_raw else None
    if status is None:
        status = "resolved" if kind == "finishAttendance" else "open"
    operator = get_str(attendance_obj, "operator", "operatorName")
    finished_by = get_str(attendance_obj, "finishBy", "finishedBy")
    attendance = Attendance(
        number=number,
        department=get_str(attendance_obj, "departament", "department"),
        operator=operator,
        finished_by=finished_by,
        operator_report=get_str(attendance_obj, "operatorReport"),
        rating_note=get_str(attendance_obj, "ratingObservation"),
        categories=_categories(attendance_obj),
        requested_at=as_time(get(attendance_obj, "requestTime")),
        started_at=as_time(get(attendance_obj, "startTime")),
        ended_at=as_time(get(attendance_obj, "endTime")),
        transcript=_transcript(get(payload, "chat")),
    )
    # The customer's chat keys the partition so attendance events stay in order with
    # that chat's messages; the attendance number is the fallback.
    chat = phone_raw or (f"attendance/{number}" if number else None)
    actor_name = finished_by if kind == "finishAttendance" else operator
    data = EventData(
        provider="plugchat",
        source=inbound.source,
        provider_event=kind,
        conversation=Conversation(
            id=phone_raw,
            status=status,
            provider_status=status_raw,
            channel="whatsapp",
            team=attendance.department,
            attendance=attendance,
        ),
        contact=Contact(id=phone_raw, name=get_str(customer, "name"), phone=phone, chat_id=chat_id),
        actor=Actor(type="agent", name=actor_name) if actor_name else None,
    )
    time = (
        attendance.ended_at if kind == "finishAttendance" else attendance.started_at
    ) or as_time(get(attendance_obj, "momment"))
    identity = f"attendance:{number}:{kind}" if number else body_digest(inbound.body)
    return build_event(
        inbound,
        type_="chat.conversation.status_changed",
        identity=identity,
        time=time,
        partition=chat,
        subject=f"attendance/{number}" if number else (f"conversation/{chat}" if chat else None),
        data=data,
    )
