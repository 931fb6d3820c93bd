"""The tolerant Chatwoot normalizer as it stood at schema 1.1 (before one reader served both
paths): every object read with :mod:`relay.providers.coerce`'s scanning readers. A test
oracle only: relay's normalizer must give exactly these events for every body.

Frozen on purpose; the helpers that read no padded keys themselves (attachments, interactive
content, templates, errors, the key sets) are relay's own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from relay.events import (
    Account,
    Actor,
    Change,
    CloudEvent,
    Contact,
    Conversation,
    Csat,
    Direction,
    EventData,
    EventType,
    Inbox,
    Message,
    Reply,
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
from relay.providers.chatwoot.content import (
    _MESSAGE_STATUSES,
    MAX_ATTACHMENTS,
    MESSAGE_KEYS,
    _Attachments,
    _kind,
    _template,
    message_type,
)
from relay.providers.chatwoot.conversations import _conversation_status, _labels
from relay.providers.chatwoot.interactive import _cards, _error, _form, _options
from relay.providers.chatwoot.normalize import AUTOMATION_PREFIX
from relay.providers.chatwoot.parts import (
    _ACTOR_TYPES,
    CONTACT_KEYS,
    CONVERSATION_KEYS,
    dict_or_none,
)
from relay.providers.coerce import (
    as_bool,
    as_e164,
    as_int,
    as_str,
    as_time,
    first,
    forget_indexes,
    get,
    get_list,
    get_obj,
    get_str,
)
from relay.providers.extensions import bounded, leftovers


def _account_id_of_conversation(conversation: Mapping[str, Any]) -> str | None:
    # Conversation payloads before Chatwoot 4.15 carry no account; their last message does.
    found = get_str(conversation, "account_id")
    for message in get_list(conversation, "messages"):
        if found is not None:
            break
        found = get_str(message, "account_id")
    return found


def account(payload: Mapping[str, Any]) -> Account | None:
    obj = get_obj(payload, "account")
    account_id = (
        get_str(obj, "id")
        or get_str(payload, "account_id")
        or _account_id_of_conversation(get_obj(payload, "conversation"))
        or _account_id_of_conversation(get_obj(payload, "current_conversation"))
        or _account_id_of_conversation(payload)
    )
    name = get_str(obj, "name")
    if account_id is None and name is None:
        return None
    return Account(id=account_id, name=name)


def inbox(obj: Mapping[str, Any], conversation: Mapping[str, Any]) -> Inbox | None:
    found = get_obj(obj, "inbox")
    inbox_id = get_str(found, "id") or get_str(conversation, "inbox_id")
    name = get_str(found, "name")
    channel = get_str(found, "channel_type") or get_str(conversation, "channel")
    if inbox_id is None and name is None and channel is None:
        return None
    return Inbox(id=inbox_id, name=name, channel=channel)


def actor(obj: Any, default_type: str = "contact") -> Actor | None:
    """A Chatwoot sender/user/assignee object as an actor.

    A contact at the top level of a message has no ``type`` key; users say ``user``,
    bots ``agent_bot`` or ``captain_assistant``.
    """
    if not isinstance(obj, Mapping) or not obj:
        return None
    kind = (get_str(obj, "type") or default_type).lower()
    return Actor(
        type=_ACTOR_TYPES.get(kind, "system"),
        id=get_str(obj, "id"),
        name=get_str(obj, "name", "available_name"),
        email=get_str(obj, "email"),
        phone=as_e164(get(obj, "phone_number")),
    )


def contact(obj: Any) -> Contact | None:
    if not isinstance(obj, Mapping) or not obj:
        return None
    return Contact(
        id=get_str(obj, "id"),
        name=get_str(obj, "name"),
        phone=as_e164(get(obj, "phone_number")),
        email=get_str(obj, "email"),
        identifier=get_str(obj, "identifier"),
        avatar_url=get_str(obj, "avatar", "thumbnail", "avatar_url"),
        custom_attributes=dict_or_none(get(obj, "custom_attributes")),
    )


def contact_extension(obj: Any) -> dict[str, Any] | None:
    return leftovers(obj, CONTACT_KEYS) if isinstance(obj, Mapping) else None


def conversation_extension(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    found = leftovers(obj, CONVERSATION_KEYS)
    contact_inbox = get(obj, "contact_inbox")
    if isinstance(contact_inbox, Mapping):
        # the raw contact_inbox row carries the widget's pubsub_token: a credential
        kept = {k: v for k, v in contact_inbox.items() if k != "pubsub_token" and v is not None}
        if kept:
            found = {**(found or {}), "contact_inbox": kept}
    return found


def conversation(obj: Mapping[str, Any], *, display_id_key: str = "id") -> Conversation | None:
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
        assignee=actor(get(meta, "assignee"), default_type="user"),
        team=get_str(team, "name") if isinstance(team, Mapping) else as_str(team),
        labels=_labels(get(obj, "labels")),
        priority=get_str(obj, "priority"),
        created_at=as_time(get(obj, "created_at")),
        updated_at=as_time(first(obj, "updated_at", "last_activity_at", "timestamp")),
        snoozed_until=as_time(get(obj, "snoozed_until")),
        custom_attributes=dict_or_none(get(obj, "custom_attributes")),
        additional_attributes=dict_or_none(get(obj, "additional_attributes")),
    )


def changes(payload: Mapping[str, Any]) -> dict[str, Change] | None:
    """``changed_attributes``: a list of one-key objects (or one object) of attr → values."""
    raw = get(payload, "changed_attributes")
    items = raw if isinstance(raw, list) else [raw] if isinstance(raw, Mapping) else []
    found: dict[str, Change] = {}
    for item in items:
        if not isinstance(item, Mapping):
            continue
        for name, values in item.items():
            if isinstance(values, Mapping):
                found[str(name)] = Change(
                    previous=get(values, "previous_value"), current=get(values, "current_value")
                )
    return found or None


def change_time(found: dict[str, Change] | None) -> str | None:
    """When a change happened: ``changed_attributes.updated_at.current_value``, if sent."""
    if not found or "updated_at" not in found:
        return None
    return as_time(found["updated_at"].current)


def message(obj: Mapping[str, Any], conversation_contact: Any, status_raw: str | None) -> Message:
    type_ = message_type(get(obj, "message_type"))
    direction: Direction | None = (
        "incoming"
        if type_ == "incoming"
        else "outgoing"
        if type_ in ("outgoing", "template")
        else None
    )
    content_attributes = dict_or_none(get(obj, "content_attributes"))
    attrs: Mapping[str, Any] = content_attributes or {}
    sender = actor(
        get(obj, "sender"), default_type="contact" if direction == "incoming" else "user"
    )
    if sender is None:
        if type_ == "activity":
            sender = Actor(type="system")
        elif direction == "outgoing":
            # Sent from the WhatsApp Business app (or Instagram) outside Chatwoot: a person.
            echo = as_bool(get(attrs, "external_echo"))
            sender = Actor(type="agent" if echo else "bot")
        elif direction == "incoming":
            sender = actor(conversation_contact)
    # Chatwoot allows 15 attachments a message (Message::NUMBER_OF_PERMITTED_ATTACHMENTS);
    # more is not a real message, and reading them all would only let one body cost more.
    attachments = _Attachments(get_list(obj, "attachments")[:MAX_ATTACHMENTS])
    contacts = attachments.contacts
    content_type = get_str(obj, "content_type")
    kind = _kind(attachments.kind, type_, content_type)
    text = get_str(obj, "content", "processed_message_content")
    submitted = get(attrs, "submitted_values")
    csat = None
    reply = None
    if content_type == "input_csat":
        response = get_obj(submitted, "csat_survey_response")
        csat = Csat(
            rating=as_int(get(response, "rating")),
            feedback=get_str(response, "feedback_message"),
        )
    elif content_type == "input_select" and isinstance(submitted, list) and submitted:
        chosen = submitted[0]
        reply = Reply(id=get_str(chosen, "value"), title=get_str(chosen, "title"))
    items = get_list(attrs, "items")
    additional = get_obj(obj, "additional_attributes")
    template = _template(additional, text)
    if template is not None and kind == "text":
        kind = "template"
    status = (status_raw or "").lower()
    return Message(
        id=get_str(obj, "id"),
        direction=direction,
        kind=kind,
        text=text,
        private=as_bool(get(obj, "private")) or False,
        status=_MESSAGE_STATUSES.get(status),
        provider_status=status_raw,
        created_at=as_time(get(obj, "created_at")),
        sender=sender,
        media=attachments.media,
        location=attachments.location,
        shared_contact=contacts[0] if contacts else None,
        shared_contacts=contacts,
        reply=reply,
        options=_options(items) if content_type == "input_select" else [],
        cards=_cards(items) if content_type == "cards" else [],
        form=_form(items, submitted) if content_type == "form" else [],
        template=template,
        csat=csat,
        in_reply_to=get_str(attrs, "in_reply_to"),
        error=_error(get(attrs, "external_error")),
        attributes=content_attributes,
    )


def is_deleted(obj: Mapping[str, Any]) -> bool:
    """Chatwoot marks a deleted message ``content_attributes.deleted`` (status ``deleted``)."""
    if as_bool(get(get_obj(obj, "content_attributes"), "deleted")):
        return True
    return (get_str(obj, "status") or "").lower() == "deleted"


def is_submission(obj: Mapping[str, Any]) -> bool:
    """The contact has answered this message's survey, select or form."""
    submitted = get(get_obj(obj, "content_attributes"), "submitted_values")
    return bool(submitted) and isinstance(submitted, Mapping | list)


def message_extension(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    found = leftovers(obj, MESSAGE_KEYS)
    additional = get_obj(obj, "additional_attributes")
    rest = leftovers(additional, frozenset({"template_params"})) if additional else None
    if rest:
        found = {**(found or {}), "additional_attributes": rest}
    return found


Builder = Callable[[Inbound, Mapping[str, Any], str, EventType, Account | None], CloudEvent]


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
        browser=dict_or_none(get(info, "browser")),
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


class parts:
    account = staticmethod(account)
    inbox = staticmethod(inbox)
    actor = staticmethod(actor)
    contact = staticmethod(contact)
    conversation = staticmethod(conversation)
    contact_extension = staticmethod(contact_extension)
    conversation_extension = staticmethod(conversation_extension)
    changes = staticmethod(changes)
    change_time = staticmethod(change_time)


class content:
    message = staticmethod(message)
    is_deleted = staticmethod(is_deleted)
    is_submission = staticmethod(is_submission)
    message_extension = staticmethod(message_extension)
