"""Chatwoot (and white-labels: Nexloo, Trino AI, ...) webhooks → canonical events.

The event name is the body's ``event`` field; one table maps it to the canonical type and
the builder that makes the event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from relay.events import (
    Account,
    CloudEvent,
    Contact,
    Conversation,
    EventData,
    EventType,
    Message,
    Typing,
)
from relay.events import Widget as WidgetPart
from relay.providers.base import (
    Inbound,
    Unmappable,
    body_digest,
    build_event,
    parse_json,
    require_object,
)
from relay.providers.chatwoot import content, parts
from relay.providers.extensions import bounded
from relay.values import (
    as_bool,
    as_str,
    as_time,
    first,
    forget_indexes,
    get,
    get_list,
    get_obj,
    get_str,
)

Builder = Callable[[Inbound, Mapping[str, Any], str, EventType, Account | None], CloudEvent]
AUTOMATION_PREFIX = "automation_event."


def _finish(
    inbound: Inbound, *, type_: EventType, identity: str, time: str | None, data: EventData
) -> CloudEvent:
    conversation, contact = data.conversation, data.contact
    if conversation is not None and conversation.id is not None:
        partition: str | None = conversation.id
        subject: str | None = f"conversation/{conversation.id}"
    elif contact is not None and contact.id is not None:
        partition = f"contact/{contact.id}"
        subject = partition
    else:
        partition = subject = None
    return build_event(
        inbound,
        type_=type_,
        identity=identity,
        time=time,
        partition=partition,
        subject=subject,
        data=data,
    )


def _latest(message: Mapping[str, Any], conversation: Mapping[str, Any]) -> Mapping[str, Any]:
    """The conversation's copy of this message (``conversation.messages[]``), if it has one."""
    message_id = get_str(message, "id")
    if message_id is None:
        return {}
    for item in get_list(conversation, "messages"):
        if get_str(item, "id") == message_id:
            return item if isinstance(item, Mapping) else {}
    return {}


def message_event(
    inbound: Inbound,
    payload: Mapping[str, Any],
    event: str,
    type_: EventType,
    account: Account | None,
) -> CloudEvent:
    conversation_obj = get_obj(payload, "conversation")
    message_obj: Mapping[str, Any] = payload
    if not conversation_obj and get(payload, "message_type") is None:
        # Automation rules post the conversation even for message events: the message is
        # the conversation's latest.
        conversation_obj = payload
        messages = [m for m in get_list(payload, "messages") if isinstance(m, Mapping)]
        message_obj = messages[-1] if messages else {}
    conversation_contact = get(get_obj(conversation_obj, "meta"), "sender")
    copy = _latest(message_obj, conversation_obj)
    # A read receipt on message_updated has no top-level status; only the copy says `read`.
    status = get_str(message_obj, "status") or get_str(copy, "status")
    message = content.message(message_obj, conversation_contact, status)
    if type_ == "chat.message.updated" and content.is_deleted(message_obj):
        type_ = "chat.message.deleted"
    contact_obj = get(payload, "contact") or conversation_contact
    if contact_obj is None and message.sender is not None and message.sender.type == "contact":
        contact_obj = get(payload, "sender")
    account_id = account.id if account else ""
    time = message.created_at
    if type_ == "chat.message.created" and message.id:
        identity = f"message:{account_id}:{message.id}"
    elif type_ == "chat.message.deleted" and message.id:
        identity = f"deleted:{account_id}:{message.id}"
        time = as_time(get(copy, "updated_at"))
    else:
        identity = body_digest(inbound.body)
        time = as_time(get(copy, "updated_at"))  # the change's time, when Chatwoot says
    if time is not None and type_ != "chat.message.created":
        message = _with_updated_at(message, time)
    actor = message.sender
    if type_ == "chat.message.updated" and content.is_submission(message_obj):
        # the contact answered the survey, select or form: the change is theirs
        actor = parts.actor(conversation_contact) or actor
    data = EventData(
        provider="chatwoot",
        source=inbound.source,
        provider_event=event,
        account=account,
        inbox=parts.inbox(payload, conversation_obj),
        conversation=parts.conversation(conversation_obj),
        message=message,
        contact=parts.contact(contact_obj),
        actor=actor,
        extensions=_extensions(
            inbound,
            ("message", content.message_extension(message_obj) if message_obj else None),
            ("conversation", parts.conversation_extension(conversation_obj)),
            ("contact", parts.contact_extension(contact_obj)),
        ),
    )
    return _finish(inbound, type_=type_, identity=identity, time=time, data=data)


def _with_updated_at(message: Message, time: str) -> Message:
    return msgspec.structs.replace(message, updated_at=time)


def _extensions(
    inbound: Inbound, *found: tuple[str, dict[str, Any] | None]
) -> dict[str, dict[str, Any]] | None:
    kept = bounded(found, len(inbound.body))
    return {"chatwoot": kept} if kept else None


def conversation_event(
    inbound: Inbound,
    payload: Mapping[str, Any],
    event: str,
    type_: EventType,
    account: Account | None,
) -> CloudEvent:
    conversation: Conversation | None = parts.conversation(payload)
    meta = get_obj(payload, "meta")
    if conversation is not None and conversation.id is None:
        conversation = None
    changes = parts.changes(payload)
    if type_ == "chat.conversation.created" and conversation is not None:
        identity = f"conversation:{account.id if account else ''}:{conversation.id}"
        time = conversation.created_at
    else:
        identity = body_digest(inbound.body)
        time = parts.change_time(changes) or (
            conversation.updated_at if conversation is not None else None
        )
    sender = get(meta, "sender")
    data = EventData(
        provider="chatwoot",
        source=inbound.source,
        provider_event=event,
        account=account,
        inbox=parts.inbox(payload, payload),
        conversation=conversation,
        contact=parts.contact(sender),
        changes=changes,
        extensions=_extensions(
            inbound,
            ("conversation", parts.conversation_extension(payload)),
            ("contact", parts.contact_extension(sender)),
        ),
    )
    return _finish(inbound, type_=type_, identity=identity, time=time, data=data)


def typing_event(
    inbound: Inbound,
    payload: Mapping[str, Any],
    event: str,
    type_: EventType,
    account: Account | None,
) -> CloudEvent:
    conversation_obj = get_obj(payload, "conversation")
    data = EventData(
        provider="chatwoot",
        source=inbound.source,
        provider_event=event,
        account=account,
        inbox=parts.inbox(payload, conversation_obj),
        conversation=parts.conversation(conversation_obj),
        contact=parts.contact(get(get_obj(conversation_obj, "meta"), "sender")),
        # Typing from the web widget names the contact as `user`, without a `type` key.
        actor=parts.actor(get(payload, "user"), default_type="contact"),
        typing=Typing(private=as_bool(get(payload, "is_private")) or False),
    )
    return _finish(inbound, type_=type_, identity=body_digest(inbound.body), time=None, data=data)


def contact_event(
    inbound: Inbound,
    payload: Mapping[str, Any],
    event: str,
    type_: EventType,
    account: Account | None,
) -> CloudEvent:
    contact: Contact | None = parts.contact(payload)
    changes = parts.changes(payload)
    if type_ == "chat.contact.created" and contact is not None and contact.id:
        identity = f"contact:{account.id if account else ''}:{contact.id}"
        time = as_time(get(payload, "created_at"))
    else:
        identity = body_digest(inbound.body)
        time = parts.change_time(changes) or as_time(first(payload, "updated_at", "created_at"))
    data = EventData(
        provider="chatwoot",
        source=inbound.source,
        provider_event=event,
        account=account,
        contact=contact,
        changes=changes,
        extensions=_extensions(inbound, ("contact", parts.contact_extension(payload))),
    )
    return _finish(inbound, type_=type_, identity=identity, time=time, data=data)


def widget_event(
    inbound: Inbound,
    payload: Mapping[str, Any],
    event: str,
    type_: EventType,
    account: Account | None,
) -> CloudEvent:
    info = get_obj(payload, "event_info")
    current = get_obj(payload, "current_conversation")
    widget = WidgetPart(
        referer=get_str(info, "referer"),
        language=get_str(info, "widget_language"),
        browser_language=get_str(info, "browser_language"),
        initiated_at=as_time(get(info, "initiated_at")),
        browser=parts.dict_or_none(get(info, "browser")),
    )
    data = EventData(
        provider="chatwoot",
        source=inbound.source,
        provider_event=event,
        account=account,
        inbox=parts.inbox(payload, current),
        conversation=parts.conversation(current),
        contact=parts.contact(get(payload, "contact")),
        widget=widget,
    )
    return _finish(
        inbound,
        type_=type_,
        identity=body_digest(inbound.body),
        time=widget.initiated_at,
        data=data,
    )


EVENTS: dict[str, tuple[EventType, Builder]] = {
    "conversation_created": ("chat.conversation.created", conversation_event),
    "conversation_updated": ("chat.conversation.updated", conversation_event),
    "conversation_status_changed": ("chat.conversation.status_changed", conversation_event),
    "message_created": ("chat.message.created", message_event),
    "message_updated": ("chat.message.updated", message_event),
    "webwidget_triggered": ("chat.widget.opened", widget_event),
    "conversation_typing_on": ("chat.typing.started", typing_event),
    "conversation_typing_off": ("chat.typing.stopped", typing_event),
    "contact_created": ("chat.contact.created", contact_event),
    "contact_updated": ("chat.contact.updated", contact_event),
}
EVENT_TYPES: dict[str, EventType] = {name: entry[0] for name, entry in EVENTS.items()}


def event_type_for(event: str) -> EventType | None:
    """The canonical type of a Chatwoot event name (automation events included)."""
    entry = EVENTS.get(event.removeprefix(AUTOMATION_PREFIX))
    return entry[0] if entry else None


def normalize_tolerant(inbound: Inbound, payload: Any = None) -> list[CloudEvent]:
    """Any Chatwoot body, read with the tolerant readers (the fast path's fallback).

    ``payload``: the body already decoded (by the fast path), or None to decode it here.
    """
    try:
        return _normalize(inbound, payload)
    finally:
        forget_indexes()


def _normalize(inbound: Inbound, decoded: Any) -> list[CloudEvent]:
    payload = require_object(parse_json(inbound.body) if decoded is None else decoded)
    event = as_str(get(payload, "event"))
    if event is None:
        raise Unmappable("missing_event", "the body has no `event` field")
    entry = EVENTS.get(event.removeprefix(AUTOMATION_PREFIX))
    if entry is None:
        raise Unmappable("unknown_event", f"unknown Chatwoot event {event!r}")
    type_, builder = entry
    return [builder(inbound, payload, event, type_, parts.account(payload))]
