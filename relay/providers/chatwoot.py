"""Chatwoot (and white-labels: Nexloo, Trino AI, ...) webhooks → canonical events.

The event name is the body's ``event`` field. Payload shapes follow Chatwoot's
``webhook_data`` builders; see tests/fixtures/README.md for the facts relied on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relay.events import (
    Account,
    Actor,
    Change,
    CloudEvent,
    Contact,
    Conversation,
    ConversationStatus,
    Direction,
    EventData,
    EventType,
    Inbox,
    Media,
    Message,
    MessageStatus,
    Typing,
    Widget,
)
from relay.providers.base import (
    Inbound,
    Unmappable,
    body_digest,
    build_event,
    parse_json,
    require_object,
)
from relay.values import (
    as_bool,
    as_e164,
    as_str,
    as_time,
    first,
    get,
    get_list,
    get_obj,
    get_str,
)

EVENT_TYPES: dict[str, EventType] = {
    "conversation_created": "chat.conversation.created",
    "conversation_updated": "chat.conversation.updated",
    "conversation_status_changed": "chat.conversation.status_changed",
    "message_created": "chat.message.created",
    "message_updated": "chat.message.updated",
    "webwidget_triggered": "chat.widget.opened",
    "conversation_typing_on": "chat.typing.started",
    "conversation_typing_off": "chat.typing.stopped",
    "contact_created": "chat.contact.created",
    "contact_updated": "chat.contact.updated",
}
AUTOMATION_PREFIX = "automation_event."

_CONVERSATION_STATUSES: dict[str, ConversationStatus] = {
    "open": "open",
    "pending": "pending",
    "resolved": "resolved",
    "snoozed": "snoozed",
}
_CONVERSATION_STATUS_CODES: dict[int, ConversationStatus] = {
    0: "open",
    1: "resolved",
    2: "pending",
    3: "snoozed",
}
_MESSAGE_STATUSES: dict[str, MessageStatus] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
}
# message_type arrives as Chatwoot's enum string or its integer value.
_MESSAGE_TYPES = {0: "incoming", 1: "outgoing", 2: "activity", 3: "template"}
_ATTACHMENT_KINDS = {"file": "document", "fallback": "link"}
_BOT_SENDER_TYPES = {"agent_bot", "agentbot", "captain_assistant", "bot"}


def event_type_for(event: str) -> EventType | None:
    """The canonical type of a Chatwoot event name (automation events included)."""
    name = event[len(AUTOMATION_PREFIX) :] if event.startswith(AUTOMATION_PREFIX) else event
    return EVENT_TYPES.get(name)


def normalize(inbound: Inbound) -> list[CloudEvent]:
    payload = require_object(parse_json(inbound.body))
    event = as_str(get(payload, "event"))
    if event is None:
        raise Unmappable("missing_event", "the body has no `event` field")
    type_ = event_type_for(event)
    if type_ is None:
        raise Unmappable("unknown_event", f"unknown Chatwoot event {event!r}")
    account = _account(payload)
    if type_.startswith("chat.message."):
        return [_message_event(inbound, payload, event, type_, account)]
    if type_.startswith("chat.conversation."):
        return [_conversation_event(inbound, payload, event, type_, account)]
    if type_.startswith("chat.typing."):
        return [_typing_event(inbound, payload, event, type_, account)]
    if type_.startswith("chat.contact."):
        return [_contact_event(inbound, payload, event, type_, account)]
    return [_widget_event(inbound, payload, event, type_, account)]


def _account_id_of_conversation(conversation: Mapping[str, Any]) -> str | None:
    # Conversation payloads before Chatwoot 4.15 carry no account; their last message does.
    found = get_str(conversation, "account_id")
    for message in get_list(conversation, "messages"):
        found = found or get_str(message, "account_id")
    return found


def _account(payload: Mapping[str, Any]) -> Account | None:
    account = get_obj(payload, "account")
    account_id = (
        get_str(account, "id")
        or get_str(payload, "account_id")
        or _account_id_of_conversation(get_obj(payload, "conversation"))
        or _account_id_of_conversation(get_obj(payload, "current_conversation"))
        or _account_id_of_conversation(payload)
    )
    name = get_str(account, "name")
    if account_id is None and name is None:
        return None
    return Account(id=account_id, name=name)


def _inbox(obj: Mapping[str, Any], conversation: Mapping[str, Any]) -> Inbox | None:
    inbox = get_obj(obj, "inbox")
    inbox_id = get_str(inbox, "id") or get_str(conversation, "inbox_id")
    name = get_str(inbox, "name")
    channel = get_str(inbox, "channel_type") or get_str(conversation, "channel")
    if inbox_id is None and name is None and channel is None:
        return None
    return Inbox(id=inbox_id, name=name, channel=channel)


def _dict_or_none(value: Any) -> dict[str, Any] | None:
    return dict(value) if isinstance(value, Mapping) and value else None


def _actor(obj: Any, default_type: str = "contact") -> Actor | None:
    """A Chatwoot sender/user/assignee object as an actor.

    A contact at the top level of a message has no ``type`` key; users say ``user``,
    bots ``agent_bot`` or ``captain_assistant``.
    """
    if not isinstance(obj, Mapping) or not obj:
        return None
    kind = (get_str(obj, "type") or default_type).lower()
    if kind == "user":
        actor_type = "agent"
    elif kind in _BOT_SENDER_TYPES:
        actor_type = "bot"
    elif kind == "contact":
        actor_type = "contact"
    else:
        actor_type = "system"
    return Actor(
        type=actor_type,  # type: ignore[arg-type]
        id=get_str(obj, "id"),
        name=get_str(obj, "name", "available_name"),
        email=get_str(obj, "email"),
        phone=as_e164(get(obj, "phone_number")),
    )


def _contact(obj: Any) -> Contact | None:
    if not isinstance(obj, Mapping) or not obj:
        return None
    phone_raw = get(obj, "phone_number")
    return Contact(
        id=get_str(obj, "id"),
        name=get_str(obj, "name"),
        phone=as_e164(phone_raw),
        email=get_str(obj, "email"),
        identifier=get_str(obj, "identifier"),
        avatar_url=get_str(obj, "avatar", "thumbnail", "avatar_url"),
        custom_attributes=_dict_or_none(get(obj, "custom_attributes")),
    )


def _conversation_status(value: Any) -> ConversationStatus | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return _CONVERSATION_STATUS_CODES.get(value)
    text = as_str(value)
    return _CONVERSATION_STATUSES.get(text.lower()) if text else None


def _labels(value: Any) -> list[str] | None:
    if not isinstance(value, list):
        return None
    labels = [label for label in (as_str(item) for item in value) if label]
    return labels or None


def _conversation(obj: Mapping[str, Any], *, display_id_key: str = "id") -> Conversation | None:
    if not obj:
        return None
    meta = get_obj(obj, "meta")
    team = get(meta, "team")
    status_raw = get(obj, "status")
    return Conversation(
        id=get_str(obj, "display_id", display_id_key),
        status=_conversation_status(status_raw),
        provider_status=as_str(status_raw),
        inbox_id=get_str(obj, "inbox_id"),
        channel=get_str(obj, "channel"),
        assignee=_actor(get(meta, "assignee"), default_type="user"),
        team=get_str(team, "name") if isinstance(team, Mapping) else as_str(team),
        labels=_labels(get(obj, "labels")),
        priority=get_str(obj, "priority"),
        created_at=as_time(get(obj, "created_at")),
        updated_at=as_time(first(obj, "updated_at", "last_activity_at", "timestamp")),
        custom_attributes=_dict_or_none(get(obj, "custom_attributes")),
        additional_attributes=_dict_or_none(get(obj, "additional_attributes")),
    )


def _message_type(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return _MESSAGE_TYPES.get(value)
    text = as_str(value)
    if text is None:
        return None
    text = text.strip().lower()
    if text.isascii() and text.isdigit():
        return _MESSAGE_TYPES.get(int(text))
    return text


def _media(attachments: list[Any]) -> tuple[list[Media], str | None]:
    media: list[Media] = []
    kind: str | None = None
    for item in attachments:
        if not isinstance(item, Mapping):
            continue
        file_type = get_str(item, "file_type")
        if kind is None and file_type:
            kind = _ATTACHMENT_KINDS.get(file_type, file_type)
        size = get(item, "file_size")
        media.append(
            Media(
                url=get_str(item, "data_url", "external_url"),
                mime_type=get_str(item, "content_type", "mime_type"),
                file_name=get_str(item, "file_name", "name"),
                size=size if isinstance(size, int) and not isinstance(size, bool) else None,
                thumbnail_url=get_str(item, "thumb_url"),
            )
        )
    return media, kind


def _latest_status(message: Mapping[str, Any], conversation: Mapping[str, Any]) -> str | None:
    """A message's delivery status: its own, or the conversation's copy of it.

    ``message_updated`` for a read receipt has no top-level status; only the copy in
    ``conversation.messages[]`` (when it is the same message) says ``read``.
    """
    status = get_str(message, "status")
    if status is not None:
        return status
    message_id = get_str(message, "id")
    for item in get_list(conversation, "messages"):
        if message_id is not None and get_str(item, "id") == message_id:
            return get_str(item, "status")
    return None


def _message(obj: Mapping[str, Any], conversation_contact: Any, status_raw: str | None) -> Message:
    message_type = _message_type(get(obj, "message_type"))
    direction: Direction | None = (
        "incoming"
        if message_type == "incoming"
        else "outgoing"
        if message_type in ("outgoing", "template")
        else None
    )
    sender_obj = get(obj, "sender")
    sender = _actor(sender_obj, default_type="contact" if direction == "incoming" else "user")
    if sender is None:
        if message_type == "activity":
            sender = Actor(type="system")
        elif direction == "outgoing":
            sender = Actor(type="bot")  # bot prompts arrive with a null sender
        elif direction == "incoming":
            sender = _actor(conversation_contact)
    media, attachment_kind = _media(get_list(obj, "attachments"))
    content_type = get_str(obj, "content_type")
    if attachment_kind:
        kind = attachment_kind
    elif message_type in ("activity", "template"):
        kind = message_type
    elif content_type and content_type != "text":
        kind = content_type
    else:
        kind = "text"
    content_attributes = _dict_or_none(get(obj, "content_attributes"))
    return Message(
        id=get_str(obj, "id"),
        direction=direction,
        kind=kind,
        text=get_str(obj, "content", "processed_message_content"),
        private=as_bool(get(obj, "private")) or False,
        status=_MESSAGE_STATUSES.get(status_raw.lower()) if status_raw else None,
        provider_status=status_raw,
        created_at=as_time(get(obj, "created_at")),
        sender=sender,
        media=media,
        in_reply_to=get_str(content_attributes or {}, "in_reply_to"),
        attributes=content_attributes,
    )


def _changes(payload: Mapping[str, Any]) -> dict[str, Change] | None:
    """``changed_attributes``: a list of one-key objects (or one object) of attr → values."""
    raw = get(payload, "changed_attributes")
    items = raw if isinstance(raw, list) else [raw] if isinstance(raw, Mapping) else []
    changes: dict[str, Change] = {}
    for item in items:
        if not isinstance(item, Mapping):
            continue
        for name, values in item.items():
            if isinstance(values, Mapping):
                changes[str(name)] = Change(
                    previous=get(values, "previous_value"), current=get(values, "current_value")
                )
    return changes or None


def _partition(conversation: Conversation | None, contact: Contact | None) -> str | None:
    if conversation is not None and conversation.id is not None:
        return conversation.id
    if contact is not None and contact.id is not None:
        return f"contact/{contact.id}"
    return None


def _subject(conversation: Conversation | None, contact: Contact | None) -> str | None:
    if conversation is not None and conversation.id is not None:
        return f"conversation/{conversation.id}"
    if contact is not None and contact.id is not None:
        return f"contact/{contact.id}"
    return None


def _finish(
    inbound: Inbound,
    *,
    type_: EventType,
    identity: str,
    time: str | None,
    data: EventData,
) -> CloudEvent:
    return build_event(
        inbound,
        type_=type_,
        identity=identity,
        time=time,
        partition=_partition(data.conversation, data.contact),
        subject=_subject(data.conversation, data.contact),
        data=data,
    )


def _message_event(
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
    message = _message(
        message_obj, conversation_contact, _latest_status(message_obj, conversation_obj)
    )
    conversation = _conversation(conversation_obj)
    contact_obj = get(payload, "contact") or conversation_contact
    if contact_obj is None and message.sender is not None and message.sender.type == "contact":
        contact_obj = get(payload, "sender")
    identity = (
        f"message:{account.id if account else ''}:{message.id}"
        if type_ == "chat.message.created" and message.id
        else body_digest(inbound.body)
    )
    data = EventData(
        provider="chatwoot",
        source=inbound.source,
        provider_event=event,
        account=account,
        inbox=_inbox(payload, conversation_obj),
        conversation=conversation,
        message=message,
        contact=_contact(contact_obj),
        actor=message.sender,
    )
    return _finish(inbound, type_=type_, identity=identity, time=message.created_at, data=data)


def _conversation_event(
    inbound: Inbound,
    payload: Mapping[str, Any],
    event: str,
    type_: EventType,
    account: Account | None,
) -> CloudEvent:
    conversation = _conversation(payload)
    meta = get_obj(payload, "meta")
    if conversation is not None and conversation.id is None:
        conversation = None
    identity = (
        f"conversation:{account.id if account else ''}:{conversation.id}"
        if type_ == "chat.conversation.created" and conversation is not None
        else body_digest(inbound.body)
    )
    time = (
        conversation.created_at
        if type_ == "chat.conversation.created" and conversation is not None
        else conversation.updated_at
        if conversation is not None
        else None
    )
    data = EventData(
        provider="chatwoot",
        source=inbound.source,
        provider_event=event,
        account=account,
        inbox=_inbox(payload, payload),
        conversation=conversation,
        contact=_contact(get(meta, "sender")),
        changes=_changes(payload),
    )
    return _finish(inbound, type_=type_, identity=identity, time=time, data=data)


def _typing_event(
    inbound: Inbound,
    payload: Mapping[str, Any],
    event: str,
    type_: EventType,
    account: Account | None,
) -> CloudEvent:
    conversation_obj = get_obj(payload, "conversation")
    conversation = _conversation(conversation_obj)
    data = EventData(
        provider="chatwoot",
        source=inbound.source,
        provider_event=event,
        account=account,
        inbox=_inbox(payload, conversation_obj),
        conversation=conversation,
        contact=_contact(get(get_obj(conversation_obj, "meta"), "sender")),
        # Typing from the web widget names the contact as `user`, without a `type` key.
        actor=_actor(get(payload, "user"), default_type="contact"),
        typing=Typing(private=as_bool(get(payload, "is_private")) or False),
    )
    return _finish(inbound, type_=type_, identity=body_digest(inbound.body), time=None, data=data)


def _contact_event(
    inbound: Inbound,
    payload: Mapping[str, Any],
    event: str,
    type_: EventType,
    account: Account | None,
) -> CloudEvent:
    contact = _contact(payload)
    identity = (
        f"contact:{account.id if account else ''}:{contact.id}"
        if type_ == "chat.contact.created" and contact is not None and contact.id
        else body_digest(inbound.body)
    )
    data = EventData(
        provider="chatwoot",
        source=inbound.source,
        provider_event=event,
        account=account,
        contact=contact,
        changes=_changes(payload),
    )
    return _finish(
        inbound,
        type_=type_,
        identity=identity,
        time=as_time(first(payload, "updated_at", "created_at"))
        if type_ == "chat.contact.updated"
        else as_time(get(payload, "created_at")),
        data=data,
    )


def _widget_event(
    inbound: Inbound,
    payload: Mapping[str, Any],
    event: str,
    type_: EventType,
    account: Account | None,
) -> CloudEvent:
    info = get_obj(payload, "event_info")
    conversation = _conversation(get_obj(payload, "current_conversation"))
    initiated_at = get(info, "initiated_at")
    widget = Widget(
        referer=get_str(info, "referer"),
        language=get_str(info, "widget_language"),
        browser_language=get_str(info, "browser_language"),
        initiated_at=as_time(initiated_at),
        browser=_dict_or_none(get(info, "browser")),
    )
    data = EventData(
        provider="chatwoot",
        source=inbound.source,
        provider_event=event,
        account=account,
        inbox=_inbox(payload, get_obj(payload, "current_conversation")),
        conversation=conversation,
        contact=_contact(get(payload, "contact")),
        widget=widget,
    )
    return _finish(
        inbound,
        type_=type_,
        identity=body_digest(inbound.body),
        time=widget.initiated_at,
        data=data,
    )


__all__ = ["EVENT_TYPES", "event_type_for", "normalize"]
