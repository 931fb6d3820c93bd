"""One Z-API message (a ``ReceivedCallback``, or an attendance transcript entry) → the
canonical contact, sender and message. Readers take the object both as sent (``payload``,
for its leftover keys) and cleaned (``view``: :func:`relay.providers.fast.clean`)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import msgspec

from relay.events import Actor, Contact, Message, MessageStatus
from relay.providers.coerce import as_bool, as_e164, as_str
from relay.providers.extensions import bounded
from relay.providers.fast import clean, passthrough
from relay.providers.plugchat import content as contents
from relay.providers.plugchat.reading import MEDIA_KEYS, moment, named, phone_of, text

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
MESSAGE_KEYS = frozenset(
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


def _address(value: Any) -> tuple[str | None, str | None, str | None]:
    raw = as_str(value)
    if raw is None:
        return None, None, None
    raw = raw.strip()
    phone = as_e164(raw)
    return raw, phone, None if phone else raw


_address_of_text = lru_cache(maxsize=4096)(_address)


def chat_address(value: Any) -> tuple[str | None, str | None, str | None]:
    """A Z-API ``phone``: (raw id, E.164 phone or None, non-phone chat id or None). Short
    texts are answered from a bounded cache: a chat's number recurs body after body."""
    return _address_of_text(value) if type(value) is str and len(value) <= 64 else _address(value)


def status(value: Any) -> MessageStatus | None:
    text = as_str(value)
    return STATUSES.get(text.strip().upper().replace("-", "_")) if text else None


def flags(view: Mapping[str, Any]) -> tuple[bool, bool]:
    """``fromMe`` and ``isGroup``, read once for the contact, the sender and the message."""
    return as_bool(view.get("fromMe")) or False, as_bool(view.get("isGroup")) or False


def contact(view: Mapping[str, Any], from_me: bool, group: bool) -> tuple[str | None, Contact]:
    """The customer's side of the chat: ``phone`` is the chat, whoever sent the message.

    For a message the business sent (``fromMe``), ``senderName``/``senderPhoto`` are the
    business's own; only ``chatName`` and ``photo`` describe the customer.
    """
    raw, phone, chat_id = chat_address(view.get("phone"))
    lid = text(view, "chatLid")
    is_group = group or (raw or "").endswith("-group")
    if is_group or from_me:
        name = text(view, "chatName")
        avatar = text(view, "photo")
    else:
        name = text(view, "senderName", "chatName")
        avatar = text(view, "photo", "senderPhoto")
    return raw, Contact(id=raw, name=name, phone=phone, chat_id=chat_id or lid, avatar_url=avatar)


def sender(view: Mapping[str, Any], customer: Contact, from_me: bool, group: bool) -> Actor:
    get = view.get
    if from_me:
        automatic = as_bool(get("fromApi")) or as_bool(get("isAutomaticMessage"))
        return Actor(
            type="bot" if automatic else "agent",
            name=text(view, "senderName"),
            phone=phone_of(get("connectedPhone")),
        )
    if group or (customer.id or "").endswith("-group"):
        participant = get("participantPhone")
        if participant is None:
            participant = get("participantLid")
        return Actor(
            type="contact",
            id=as_str(participant),
            name=text(view, "senderName"),
            phone=phone_of(get("participantPhone")),
        )
    return Actor(type="contact", id=customer.id, name=customer.name, phone=customer.phone)


PASSTHROUGH_ATTRIBUTES = frozenset(
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


def _attributes(payload: dict[str, Any], padded: bool) -> dict[str, Any]:
    """The flags kept as they are, in the body's order (one pass over its keys, not one
    scan per flag looked for; ``padded``: some keys may carry stray whitespace)."""
    if not padded:
        present = payload.keys() & PASSTHROUGH_ATTRIBUTES  # at C speed; often one or none
        if not present:
            return {}
        return {
            name: value for name, value in payload.items() if name in present and value is not None
        }
    return {
        name: payload[key]
        for key, name in named(payload, PASSTHROUGH_ATTRIBUTES)
        if payload[key] is not None
    }


def message(
    payload: dict[str, Any],
    view: Mapping[str, Any],
    *,
    by: Actor | None,
    from_me: bool,
    with_extension: bool = True,
    body_size: int | None = None,
) -> tuple[Message, dict[str, Any] | None]:
    """The canonical message and its extension (top-level and content leftovers)."""
    get = view.get
    found, key = contents.content(payload, view)
    status_raw = text(view, "status")
    edited = as_bool(get("isEdit")) or None
    at = moment(get("momment"))
    attributes = _attributes(payload, view is not payload)
    built = Message(
        id=text(view, "messageId", "id"),
        direction="outgoing" if from_me else "incoming",
        kind=found.kind,
        text=found.text,
        # An incoming message's RECEIVED is not a delivery receipt of ours.
        status=status(status_raw) if from_me else None,
        provider_status=status_raw,
        created_at=at if not edited else None,
        updated_at=at if edited else None,
        sender=by,
        media=found.media,
        location=found.location,
        view_once=found.view_once,
        edited=edited,
        in_reply_to=text(view, "referenceMessageId") or found.in_reply_to,
        attributes=attributes or None,
    )
    referral = contents.referral(view)
    if found.rare or referral is not None:
        # a Struct call of more than 15 keywords costs several times one of 15: the
        # content parts most messages lack are set apart, only when there are some
        built = msgspec.structs.replace(
            built,
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
            referral=referral,
        )
    if not with_extension:
        return built, None
    known = MESSAGE_KEYS if key is None else _KNOWN_WITH[key.strip()]
    content_obj = payload[key] if key is not None else None
    extension = bounded(
        (
            ("message", passthrough(payload, known)),
            ("content", passthrough(content_obj, found.known)),
        ),
        body_size,
    )
    return built, extension


# the body's known keys with its content key, one set per content key (not one a body)
_KNOWN_WITH = {key: MESSAGE_KEYS | {key} for key in contents.CONTENT_KEYS}


# The keys a callback's top level (or a transcript entry) holds: an object of only these is
# read as it is, with one subset test (clean()).
BODY_KEYS = (
    MESSAGE_KEYS
    | PASSTHROUGH_ATTRIBUTES
    | contents.CONTENT_KEYS
    | MEDIA_KEYS
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
        # attendances
        "attendance",
        "chat",
        # delivery and disconnection
        "zaapId",
        "error",
        "errorCode",
        "connected",
        "disconnected",
    }
)


def view_of(payload: dict[str, Any]) -> Mapping[str, Any]:
    """A callback (or transcript entry) cleaned, to read from."""
    return payload if payload.keys() <= BODY_KEYS else clean(payload, BODY_KEYS)
