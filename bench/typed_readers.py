"""The straight-line readers of :mod:`bench.typed` (not normalizers): the load bench's
body read into the event relay's normalizer builds, from the Structs or from the dicts.

They know only that body's shape (text message, no attachments, no template): a lower bound
of what a typed reader costs, asserted byte for byte against the normalizer before timing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from relay.events import Account, Actor, CloudEvent, Contact, Conversation, EventData, Inbox
from relay.events import Message as MessagePart
from relay.providers import Inbound
from relay.providers.base import build_event
from relay.providers.chatwoot.parts import phone, text_of
from relay.providers.extensions import bounded
from relay.providers.fast import time_of

CONVERSATION_PASS = ("can_reply", "unread_count", "first_reply_created_at", "waiting_since")
CONVERSATION_PASS += ("agent_last_seen_at", "contact_last_seen_at", "assignee_last_seen_at")
"""What of a conversation goes to the pass-through (``CONVERSATION_SEEN`` less its keys)."""
PERSON_PASS = ("available_name", "additional_attributes", "blocked")
PERSON_PASS += ("availability_status", "last_activity_at")
"""What of a contact goes to the pass-through (``PERSON_SEEN`` less ``CONTACT_KEYS``)."""

_plain = msgspec.json.Decoder().decode


class Stamped(tuple[int, Any]):
    """A pass-through value and when the decoder met it (the counter's value)."""

    __slots__ = ()


def _id(value: Any) -> str | None:
    return str(value) if type(value) is int else text_of(value)


def _kept(obj: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    """The non-empty pass-through values of ``obj``: in ``keys``' order, or in the body's
    when they are :class:`Stamped`."""
    found = []
    for key in keys:
        value = getattr(obj, key)
        if value is None:
            continue
        when = 0
        if type(value) is Stamped:
            when, value = value
            if value is None:
                continue
        if value or type(value) not in (dict, list):
            found.append((when, key, value))
    if found and found[0][0]:
        found.sort()
    return {key: value for _, key, value in found}


def _kept_dicts(obj: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """:func:`_kept` of a dict: in the body's order."""
    empty = (dict, list)
    return {
        k: v for k, v in obj.items() if k in keys and v is not None and (v or type(v) not in empty)
    }


_STATUSES = {"open": "open", "pending": "pending", "resolved": "resolved", "snoozed": "snoozed"}


def straight_line(decode: Callable[[bytes], Any]) -> Callable[[Inbound], list[CloudEvent]]:
    """A reader of the bench body's shape only (see the module's docstring)."""

    def normalize(inbound: Inbound) -> list[CloudEvent]:
        body = decode(inbound.body)
        conv = body.conversation
        sender = conv.meta.sender
        account = Account(id=_id(body.account.id), name=text_of(body.account.name))
        inbox = Inbox(
            id=_id(body.inbox.id),
            name=text_of(body.inbox.name),
            channel=text_of(body.inbox.channel_type) or text_of(conv.channel),
        )
        conversation = Conversation(
            id=text_of(conv.display_id) or _id(conv.id),
            status=_STATUSES.get(conv.status.lower()),  # type: ignore[arg-type]
            provider_status=text_of(conv.status),
            inbox_id=_id(conv.inbox_id),
            channel=text_of(conv.channel),
            created_at=time_of(conv.created_at),
            updated_at=time_of(conv.updated_at),
        )
        status = text_of(body.status) or text_of(conv.messages[-1].status)
        by = body.sender
        actor = Actor(
            type="contact",
            id=_id(by.id),
            name=text_of(by.name),
            email=text_of(by.email),
            phone=phone(by.phone_number),
        )
        message = MessagePart(
            id=_id(body.id),
            direction="incoming",
            kind="text",
            text=text_of(body.content),
            private=body.private is True,
            status=status,  # type: ignore[arg-type]
            provider_status=status,
            created_at=time_of(body.created_at),
            sender=actor,
            media=[],
        )
        contact = Contact(
            id=_id(sender.id),
            name=text_of(sender.name),
            phone=phone(sender.phone_number),
            email=text_of(sender.email),
            identifier=text_of(sender.identifier),
            avatar_url=text_of(sender.avatar)
            or text_of(sender.thumbnail)
            or text_of(sender.avatar_url),
            custom_attributes=sender.custom_attributes or None,
        )
        kept = _kept(conv, CONVERSATION_PASS)
        contact_inbox = dict(conv.contact_inbox)
        contact_inbox.pop("pubsub_token", None)
        kept["contact_inbox"] = contact_inbox
        extensions = bounded(
            (
                ("message", {"source_id": body.source_id}),
                ("conversation", kept),
                ("contact", _kept(sender, PERSON_PASS)),
            ),
            len(inbound.body),
        )
        data = EventData(
            provider="chatwoot",
            source=inbound.source,
            provider_event=body.event,
            account=account,
            inbox=inbox,
            conversation=conversation,
            message=message,
            contact=contact,
            actor=actor,
            extensions={"chatwoot": extensions} if extensions else None,
        )
        return [
            build_event(
                inbound,
                type_="chat.message.created",
                identity=f"message:{account.id}:{message.id}",
                time=message.created_at,
                partition=conversation.id,
                subject=f"conversation/{conversation.id}",
                data=data,
            )
        ]

    return normalize


def straight_line_dicts(inbound: Inbound) -> list[CloudEvent]:
    """:func:`straight_line` on the dict decode (``.get`` for the attribute reads): what
    the Structs add to a reader that is straight-line either way."""
    body = _plain(inbound.body)
    conv = body["conversation"]
    sender = conv["meta"]["sender"]
    get = dict.get
    account_obj, inbox_obj = body["account"], body["inbox"]
    account = Account(id=_id(get(account_obj, "id")), name=text_of(get(account_obj, "name")))
    inbox = Inbox(
        id=_id(get(inbox_obj, "id")),
        name=text_of(get(inbox_obj, "name")),
        channel=text_of(get(inbox_obj, "channel_type")) or text_of(get(conv, "channel")),
    )
    status_raw = conv["status"]
    conversation = Conversation(
        id=text_of(get(conv, "display_id")) or _id(get(conv, "id")),
        status=_STATUSES.get(status_raw.lower()),  # type: ignore[arg-type]
        provider_status=text_of(status_raw),
        inbox_id=_id(get(conv, "inbox_id")),
        channel=text_of(get(conv, "channel")),
        created_at=time_of(get(conv, "created_at")),
        updated_at=time_of(get(conv, "updated_at")),
    )
    status = text_of(get(body, "status")) or text_of(conv["messages"][-1].get("status"))
    by = body["sender"]
    actor = Actor(
        type="contact",
        id=_id(get(by, "id")),
        name=text_of(get(by, "name")),
        email=text_of(get(by, "email")),
        phone=phone(get(by, "phone_number")),
    )
    message = MessagePart(
        id=_id(get(body, "id")),
        direction="incoming",
        kind="text",
        text=text_of(get(body, "content")),
        private=get(body, "private") is True,
        status=status,  # type: ignore[arg-type]
        provider_status=status,
        created_at=time_of(get(body, "created_at")),
        sender=actor,
        media=[],
    )
    contact = Contact(
        id=_id(get(sender, "id")),
        name=text_of(get(sender, "name")),
        phone=phone(get(sender, "phone_number")),
        email=text_of(get(sender, "email")),
        identifier=text_of(get(sender, "identifier")),
        avatar_url=text_of(get(sender, "avatar"))
        or text_of(get(sender, "thumbnail"))
        or text_of(get(sender, "avatar_url")),
        custom_attributes=get(sender, "custom_attributes") or None,
    )
    kept = _kept_dicts(conv, CONVERSATION_PASS)
    contact_inbox = dict(conv["contact_inbox"])
    contact_inbox.pop("pubsub_token", None)
    kept["contact_inbox"] = contact_inbox
    extensions = bounded(
        (
            ("message", {"source_id": get(body, "source_id")}),
            ("conversation", kept),
            ("contact", _kept_dicts(sender, PERSON_PASS)),
        ),
        len(inbound.body),
    )
    data = EventData(
        provider="chatwoot",
        source=inbound.source,
        provider_event=get(body, "event"),
        account=account,
        inbox=inbox,
        conversation=conversation,
        message=message,
        contact=contact,
        actor=actor,
        extensions={"chatwoot": extensions} if extensions else None,
    )
    return [
        build_event(
            inbound,
            type_="chat.message.created",
            identity=f"message:{account.id}:{message.id}",
            time=message.created_at,
            partition=conversation.id,
            subject=f"conversation/{conversation.id}",
            data=data,
        )
    ]
