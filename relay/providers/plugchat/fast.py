"""The fast path for PlugChat's Z-API message callbacks: ``ReceivedCallback`` (and bodies
without a ``type`` on the message URL kinds) and ``MessageStatusCallback``.

As for Chatwoot (:mod:`relay.providers.chatwoot.fast`): one msgspec decode, the body's own
keys checked once for stray whitespace, then ``dict.get`` for the top-level fields; the
content object (``text``, ``image``, ``order``…) is read by the tolerant content readers
as it is. Anything else (attendances, delivery and disconnection callbacks, a padded key,
too many ids) raises :class:`~relay.providers.fast.Fallback` and the tolerant path
(:func:`relay.providers.plugchat.normalize_tolerant`) reads the body.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
)
from relay.providers.base import Inbound, body_digest, build_event
from relay.providers.coerce import as_bool, as_e164, as_str, as_time
from relay.providers.extensions import bounded
from relay.providers.extensions import leftovers as tolerant_leftovers
from relay.providers.fast import Fallback, leftovers, plain
from relay.providers.plugchat import content as contents
from relay.providers.plugchat import zapi

_decode = msgspec.json.Decoder().decode

# The callback keys Z-API sends (an object holding only these needs one subset test).
_SEEN = (
    zapi._MESSAGE_KEYS
    | zapi._PASSTHROUGH_ATTRIBUTES
    | contents.CONTENT_KEYS
    | {
        "ids",
        "senderLid",
        "chatLid",
        "isNewsletter",
        "phoneDevice",
        "messageExpirationSeconds",
        "forwarded",
        "fromApi",
        "broadcast",
        "participantPhone",
        "participantLid",
    }
)


def _contact(payload: dict[str, Any]) -> tuple[str | None, Contact]:
    """:func:`zapi.contact` of a checked body."""
    raw, phone, chat_id = zapi.chat_address(payload.get("phone"))
    lid = as_str(payload.get("chatLid"))
    from_me = as_bool(payload.get("fromMe")) or False
    is_group = as_bool(payload.get("isGroup")) or (raw or "").endswith("-group")
    if is_group or from_me:
        name = as_str(payload.get("chatName"))
        avatar = as_str(payload.get("photo"))
    else:
        name = as_str(payload.get("senderName")) or as_str(payload.get("chatName"))
        avatar = as_str(payload.get("photo")) or as_str(payload.get("senderPhoto"))
    return raw, Contact(id=raw, name=name, phone=phone, chat_id=chat_id or lid, avatar_url=avatar)


def _sender(payload: dict[str, Any], customer: Contact) -> Actor:
    """:func:`zapi.sender` of a checked body."""
    if as_bool(payload.get("fromMe")):
        automatic = as_bool(payload.get("fromApi")) or as_bool(payload.get("isAutomaticMessage"))
        return Actor(
            type="bot" if automatic else "agent",
            name=as_str(payload.get("senderName")),
            phone=as_e164(payload.get("connectedPhone")),
        )
    if as_bool(payload.get("isGroup")) or (customer.id or "").endswith("-group"):
        participant = payload.get("participantPhone")
        if participant is None:
            participant = payload.get("participantLid")
        return Actor(
            type="contact",
            id=as_str(participant),
            name=as_str(payload.get("senderName")),
            phone=as_e164(payload.get("participantPhone")),
        )
    return Actor(type="contact", id=customer.id, name=customer.name, phone=customer.phone)


def _message(
    payload: dict[str, Any], by: Actor, body_size: int, *, with_extension: bool = True
) -> tuple[Message, dict[str, Any] | None]:
    """:func:`zapi.message` of a checked body (the content object read as it is)."""
    found, key = contents.content(payload)
    from_me = as_bool(payload.get("fromMe")) or False
    status_raw = as_str(payload.get("status"))
    edited = as_bool(payload.get("isEdit")) or None
    moment = as_time(payload.get("momment"))
    attributes = {
        name: value
        for name, value in payload.items()
        if value is not None and name in zapi._PASSTHROUGH_ATTRIBUTES
    }
    built = Message(
        id=as_str(payload.get("messageId")) or as_str(payload.get("id")),
        direction="outgoing" if from_me else "incoming",
        kind=found.kind,
        text=found.text,
        status=zapi.status(status_raw) if from_me else None,
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
        in_reply_to=as_str(payload.get("referenceMessageId")) or found.in_reply_to,
        attributes=attributes or None,
    )
    if not with_extension:
        return built, None
    known = zapi._MESSAGE_KEYS if key is None else zapi._MESSAGE_KEYS | {key}
    content_obj = payload.get(key) if key is not None else None
    extension = bounded(
        (
            ("message", leftovers(payload, known)),
            (
                "content",
                tolerant_leftovers(content_obj, found.known)
                if isinstance(content_obj, Mapping)
                else None,
            ),
        ),
        body_size,
    )
    return built, extension


def transcript_message(item: Any) -> Message | None:
    """:func:`zapi.message` of one attendance transcript entry (no extension), or None when
    the entry is not a plain object with clean keys (the tolerant readers then read it)."""
    if type(item) is not dict:
        return None
    try:
        plain(item, _SEEN)
        _, customer = _contact(item)
        return _message(item, _sender(item, customer), 0, with_extension=False)[0]
    except Fallback:
        return None


def _build(
    inbound: Inbound,
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


def received_event_fast(inbound: Inbound, payload: dict[str, Any], event: str) -> list[CloudEvent]:
    """:func:`zapi.received_event` of a checked body."""
    chat, customer = _contact(payload)
    built, extension = _message(payload, _sender(payload, customer), len(inbound.body))
    instance = as_str(payload.get("instanceId"))
    type_: EventType = "chat.message.created"
    if built.kind == "revoked":
        type_ = "chat.message.deleted"
        moment = as_str(payload.get("momment")) or ""
        identity = f"deleted:{instance or ''}:{built.id}:{moment}"
        time = built.created_at
        built = msgspec.structs.replace(built, created_at=None, updated_at=time)
    elif built.edited:
        type_ = "chat.message.updated"
        time = built.updated_at
        identity = f"edit:{instance or ''}:{built.id}:{as_str(payload.get('momment')) or ''}"
    else:
        time = built.created_at
        identity = f"message:{instance or ''}:{built.id}"
    if built.id is None:
        identity = body_digest(inbound.body)
    channel = (
        Channel(id=instance, phone=as_e164(payload.get("connectedPhone")))
        if instance is not None
        else None
    )
    data = EventData(
        provider="plugchat",
        source=inbound.source,
        provider_event=event,
        conversation=Conversation(id=chat, channel="whatsapp") if chat else None,
        message=built,
        contact=customer,
        actor=built.sender,
        channel=channel,
        extensions={"plugchat": extension} if extension else None,
    )
    return [_build(inbound, type_, identity, time, chat, data)]


def status_events_fast(inbound: Inbound, payload: dict[str, Any], event: str) -> list[CloudEvent]:
    """:func:`zapi.status_events` of a checked body."""
    raw_ids = payload.get("ids")
    if type(raw_ids) is not list:
        raw_ids = []
    if len(raw_ids) > inbound.max_events:
        raise Fallback  # refused by the tolerant path, which says why
    ids = [i for i in map(as_str, raw_ids) if i]
    single = as_str(payload.get("messageId")) or as_str(payload.get("id"))
    if not ids and single:
        ids = [single]
    if not ids:
        raise Fallback
    chat, customer = _contact(payload)
    status_raw = as_str(payload.get("status"))
    canonical = zapi.status(status_raw)
    time = as_time(payload.get("momment"))
    instance = as_str(payload.get("instanceId"))
    channel = Channel(id=instance) if instance else None
    conversation = Conversation(id=chat, channel="whatsapp") if chat else None
    contact = customer if chat else None
    prefix = f"status:{instance or ''}:"
    suffix = f":{status_raw or ''}:{time or ''}"
    return [
        _build(
            inbound,
            "chat.message.status_changed",
            prefix + message_id + suffix,
            time,
            chat,
            EventData(
                provider="plugchat",
                source=inbound.source,
                provider_event=event,
                conversation=conversation,
                message=Message(
                    id=message_id, status=canonical, provider_status=status_raw, kind="status"
                ),
                contact=contact,
                channel=channel,
            ),
        )
        for message_id in ids
    ]


FastBuilder = Callable[[Inbound, dict[str, Any], str], list[CloudEvent]]
# by the body's `type` (lower case) ...
_BY_CALLBACK: dict[str, FastBuilder] = {
    "receivedcallback": received_event_fast,
    "messagestatuscallback": status_events_fast,
}
# ... or, without one, by the URL kind
_BY_KIND: dict[str, FastBuilder] = {
    "receiveMessage": received_event_fast,
    "sendingMessage": received_event_fast,
    "messageStatus": status_events_fast,
}


_MESSAGE_KINDS = frozenset(
    {
        "receiveMessage",
        "sendingMessage",
        "messageStatus",
        "messageDeliveryError",
        "whenDisconnecting",
    }
)


def normalize_fast(inbound: Inbound, kind: str | None = None) -> list[CloudEvent]:
    """The fast path for a body on a message URL ``kind`` (canonical spelling; default the
    inbound's): the same events as the tolerant path, or :class:`Fallback` (carrying the
    decoded body once decoded). Attendance kinds always fall back."""
    kind = inbound.kind if kind is None else kind
    if kind not in _MESSAGE_KINDS:
        raise Fallback
    payload = _decode(inbound.body)
    try:
        if type(payload) is not dict:
            raise Fallback
        plain(payload, _SEEN)
        callback = as_str(payload.get("type"))
        if callback is not None:
            fast = _BY_CALLBACK.get(callback.lower())
            if fast is None:
                raise Fallback
            return fast(inbound, payload, callback)
        if isinstance(payload.get("attendance"), Mapping):
            raise Fallback
        fast = _BY_KIND.get(kind)
        if fast is None or (fast is received_event_fast and payload.get("messageId") is None):
            raise Fallback
        return fast(inbound, payload, kind)
    except Fallback:
        raise Fallback(payload) from None
