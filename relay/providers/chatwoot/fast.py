"""The fast path for Chatwoot message, conversation and contact events.

The body is decoded once by msgspec into plain objects; every object this path reads has
its keys checked once for stray whitespace (a set comparison, at C speed when all its
keys are ones Chatwoot sends) and is then read with ``dict.get`` instead of the tolerant
readers' scans. Whatever this path does not model raises
:class:`~relay.providers.fast.Fallback` and the tolerant path
(:mod:`relay.providers.chatwoot.normalize`) reads the body instead; both give the same
events (tests/unit/providers/test_fast.py runs every fixture through both).

Why not Structs: the extension pass-through keeps an object's unmodelled keys in the
body's order, and a key with stray whitespace must be seen to be read; a Struct keeps
neither, and every object relay reads is one of those.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from relay.events import (
    DATASCHEMA,
    Account,
    Actor,
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
    event_id,
)
from relay.providers.base import Inbound, body_digest
from relay.providers.chatwoot import content, parts
from relay.providers.chatwoot.normalize import (
    AUTOMATION_PREFIX,
    EVENTS,
    Builder,
    _extensions,
    contact_event,
    conversation_event,
    message_event,
)
from relay.providers.extensions import MAX_KEYS
from relay.providers.extensions import leftovers as tolerant_leftovers
from relay.providers.fast import Fallback
from relay.values import as_bool, as_e164, as_int, as_str, as_time, get, get_list, get_obj, get_str

_decode = msgspec.json.Decoder().decode

# Keys Chatwoot sends in each object (its webhook_data/push_event_data builders): an
# object holding only these needs no whitespace check beyond one subset test.
_PERSON_KEYS = frozenset(
    {
        "id",
        "name",
        "available_name",
        "email",
        "phone_number",
        "identifier",
        "avatar",
        "avatar_url",
        "thumbnail",
        "type",
        "custom_attributes",
        "additional_attributes",
        "blocked",
        "account",
        "availability_status",
        "last_activity_at",
        "created_at",
    }
)
_CONVERSATION_SEEN = parts.CONVERSATION_KEYS | {
    "can_reply",
    "unread_count",
    "first_reply_created_at",
    "waiting_since",
    "agent_last_seen_at",
    "contact_last_seen_at",
    "assignee_last_seen_at",
}
_META_KEYS = frozenset({"sender", "assignee", "assignee_type", "team", "hmac_verified", "channel"})
_SMALL_KEYS = frozenset({"id", "name", "channel_type"})
_COPY_KEYS = content.MESSAGE_KEYS | {
    "source_id",
    "sentiment",
    "external_source_ids",
    "processed_message_content",
}
# Shapes this path leaves to the tolerant one: automation bodies (a conversation with
# its messages at the top) and a message carrying another conversation.
_UNMODELLED = frozenset({"messages", "current_conversation"})
_EMPTY: dict[str, Any] = {}


_CONTAINERS = (dict, list)


def leftovers(obj: dict[str, Any], known: frozenset[str]) -> dict[str, Any] | None:
    """:func:`relay.providers.extensions.leftovers` of an object whose keys carry no stray
    whitespace: one pass, in the body's order."""
    extra = obj.keys() - known
    if not extra:
        return None
    if len(extra) >= MAX_KEYS:  # the tolerant path counts what it leaves out
        raise Fallback
    found = {
        key: value
        for key, value in obj.items()
        if key in extra and value is not None and (value or type(value) not in _CONTAINERS)
    }
    return found or None


def _plain(obj: dict[str, Any], known: frozenset[str]) -> dict[str, Any]:
    """``obj`` itself, once its keys are known to carry no stray whitespace."""
    keys = obj.keys()
    if len(keys) >= len(known) + MAX_KEYS:
        raise Fallback  # that many unknown keys: the tolerant path bounds what it keeps
    if keys <= known:
        return obj
    extra = keys - known
    if len(extra) >= MAX_KEYS or set(map(str.strip, extra)) != extra:
        raise Fallback
    return obj


def _object(value: Any, known: frozenset[str]) -> dict[str, Any]:
    """``get_obj`` of a value: the checked object, or an empty one."""
    return _plain(value, known) if type(value) is dict else _EMPTY


def _actor(obj: Any, default_type: str) -> Actor | None:
    """:func:`parts.actor` of a checked object."""
    if type(obj) is not dict or not obj:
        return None
    kind = (as_str(obj.get("type")) or default_type).lower()
    return Actor(
        type=parts._ACTOR_TYPES.get(kind, "system"),
        id=as_str(obj.get("id")),
        name=as_str(obj.get("name")) or as_str(obj.get("available_name")),
        email=as_str(obj.get("email")),
        phone=as_e164(obj.get("phone_number")),
    )


def _contact(obj: Any) -> Contact | None:
    """:func:`parts.contact` of a checked object."""
    if type(obj) is not dict or not obj:
        return None
    return Contact(
        id=as_str(obj.get("id")),
        name=as_str(obj.get("name")),
        phone=as_e164(obj.get("phone_number")),
        email=as_str(obj.get("email")),
        identifier=as_str(obj.get("identifier")),
        avatar_url=as_str(obj.get("avatar"))
        or as_str(obj.get("thumbnail"))
        or as_str(obj.get("avatar_url")),
        custom_attributes=parts.dict_or_none(obj.get("custom_attributes")),
    )


def _conversation(obj: dict[str, Any], meta: dict[str, Any]) -> Conversation | None:
    """:func:`parts.conversation` of a checked conversation and its checked ``meta``."""
    if not obj:
        return None
    team = meta.get("team")
    status_raw = obj.get("status")
    updated = obj.get("updated_at")
    if updated is None:
        updated = obj.get("last_activity_at")
        if updated is None:
            updated = obj.get("timestamp")
    assignee = meta.get("assignee")
    return Conversation(
        id=as_str(obj.get("display_id")) or as_str(obj.get("id")),
        status=parts._CONVERSATION_STATUSES.get(status_raw.lower())
        if type(status_raw) is str
        else parts._conversation_status(status_raw),
        provider_status=as_str(status_raw),
        inbox_id=as_str(obj.get("inbox_id")),
        channel=as_str(obj.get("channel")),
        assignee=_actor(_plain(assignee, _PERSON_KEYS), "user") if type(assignee) is dict else None,
        team=get_str(team, "name") if type(team) is dict else as_str(team),
        labels=parts._labels(obj.get("labels")),
        priority=as_str(obj.get("priority")),
        created_at=as_time(obj.get("created_at")),
        updated_at=as_time(updated),
        snoozed_until=as_time(obj.get("snoozed_until")),
        custom_attributes=parts.dict_or_none(obj.get("custom_attributes")),
        additional_attributes=parts.dict_or_none(obj.get("additional_attributes")),
    )


def _message(obj: dict[str, Any], conversation_contact: Any, status_raw: str | None) -> Message:
    """:func:`content.message` of the checked message."""
    type_ = content.message_type(obj.get("message_type"))
    direction: Direction | None = (
        "incoming"
        if type_ == "incoming"
        else "outgoing"
        if type_ in ("outgoing", "template")
        else None
    )
    content_attributes = parts.dict_or_none(obj.get("content_attributes"))
    attrs: Mapping[str, Any] = content_attributes or _EMPTY
    sender_obj = obj.get("sender")
    sender = (
        _actor(_plain(sender_obj, _PERSON_KEYS), "contact" if direction == "incoming" else "user")
        if type(sender_obj) is dict
        else None
    )
    if sender is None:
        if type_ == "activity":
            sender = Actor(type="system")
        elif direction == "outgoing":
            echo = as_bool(get(attrs, "external_echo"))
            sender = Actor(type="agent" if echo else "bot")
        elif direction == "incoming":
            sender = _actor(conversation_contact, "contact")
    items_raw = obj.get("attachments")
    if type(items_raw) is list and items_raw:
        attachments = content._Attachments(items_raw[: content.MAX_ATTACHMENTS])
        contacts = attachments.contacts
        attachment_kind = attachments.kind
        media = attachments.media
        location = attachments.location
    else:
        contacts, attachment_kind, media, location = [], None, [], None
    content_type = as_str(obj.get("content_type"))
    kind = content._kind(attachment_kind, type_, content_type)
    text = as_str(obj.get("content")) or as_str(obj.get("processed_message_content"))
    csat = reply = template = None
    options: list[Any] = []
    cards: list[Any] = []
    form: list[Any] = []
    if attrs:
        submitted = get(attrs, "submitted_values")
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
        if content_type == "input_select":
            options = content._options(items)
        elif content_type == "cards":
            cards = content._cards(items)
        elif content_type == "form":
            form = content._form(items, submitted)
    elif content_type == "input_csat":
        csat = Csat()
    additional = obj.get("additional_attributes")
    if type(additional) is dict and additional:
        template = content._template(additional, text)
        if template is not None and kind == "text":
            kind = "template"
    status = (status_raw or "").lower()
    return Message(
        id=as_str(obj.get("id")),
        direction=direction,
        kind=kind,
        text=text,
        private=as_bool(obj.get("private")) or False,
        status=content._MESSAGE_STATUSES.get(status),
        provider_status=status_raw,
        created_at=as_time(obj.get("created_at")),
        sender=sender,
        media=media,
        location=location,
        shared_contact=contacts[0] if contacts else None,
        shared_contacts=contacts,
        reply=reply,
        options=options,
        cards=cards,
        form=form,
        template=template,
        csat=csat,
        in_reply_to=get_str(attrs, "in_reply_to") if attrs else None,
        error=content._error(get(attrs, "external_error")) if attrs else None,
        attributes=content_attributes,
    )


def _conversation_extension(obj: dict[str, Any]) -> dict[str, Any] | None:
    found = leftovers(obj, parts.CONVERSATION_KEYS)
    contact_inbox = obj.get("contact_inbox")
    if type(contact_inbox) is dict:
        kept = {k: v for k, v in contact_inbox.items() if k != "pubsub_token" and v is not None}
        if kept:
            found = {**(found or {}), "contact_inbox": kept}
    return found


def _message_extension(obj: dict[str, Any]) -> dict[str, Any] | None:
    found = leftovers(obj, content.MESSAGE_KEYS)
    additional = obj.get("additional_attributes")
    if type(additional) is dict and additional:
        # not checked for stray whitespace: the tolerant reader
        rest = tolerant_leftovers(additional, frozenset({"template_params"}))
        if rest:
            found = {**(found or {}), "additional_attributes": rest}
    return found


def _copies(conversation: dict[str, Any]) -> list[dict[str, Any]]:
    """The conversation's ``messages``, each checked (anything but objects falls back)."""
    value = conversation.get("messages")
    if value is None:
        return []
    if type(value) is not list:
        raise Fallback
    for copy in value:
        if type(copy) is not dict:
            raise Fallback
        _plain(copy, _COPY_KEYS)
    return value


def _inbox(obj: dict[str, Any], conversation: dict[str, Any]) -> Inbox | None:
    found = _object(obj.get("inbox"), _SMALL_KEYS)
    inbox_id = as_str(found.get("id")) or as_str(conversation.get("inbox_id"))
    name = as_str(found.get("name"))
    channel = as_str(found.get("channel_type")) or as_str(conversation.get("channel"))
    if inbox_id is None and name is None and channel is None:
        return None
    return Inbox(id=inbox_id, name=name, channel=channel)


def _account(
    obj: dict[str, Any], conversation: dict[str, Any], copies: list[dict[str, Any]]
) -> Account | None:
    """:func:`parts.account` of a message body (no ``current_conversation`` or top-level
    ``messages``: those fall back)."""
    found = _object(obj.get("account"), _SMALL_KEYS)
    account_id = (
        as_str(found.get("id"))
        or as_str(obj.get("account_id"))
        or as_str(conversation.get("account_id"))
    )
    for copy in copies:
        if account_id is not None:
            break
        account_id = as_str(copy.get("account_id"))
    name = as_str(found.get("name"))
    if account_id is None and name is None:
        return None
    return Account(id=account_id, name=name)


def message_event_fast(
    inbound: Inbound, obj: dict[str, Any], event: str, type_: EventType
) -> CloudEvent:
    """:func:`normalize.message_event` of a body whose message and conversation this path
    models (everything else raises :class:`Fallback`)."""
    if not _UNMODELLED.isdisjoint(obj):
        raise Fallback
    conversation_value = obj.get("conversation")
    conversation = (
        _plain(conversation_value, _CONVERSATION_SEEN)
        if type(conversation_value) is dict
        else _EMPTY
    )
    if not conversation and obj.get("message_type") is None:
        raise Fallback  # an automation body: the message is the conversation's latest
    meta = _object(conversation.get("meta"), _META_KEYS)
    conversation_contact = meta.get("sender")
    if type(conversation_contact) is dict:
        _plain(conversation_contact, _PERSON_KEYS)
    copies = _copies(conversation)

    message_id = as_str(obj.get("id"))
    copy = _EMPTY
    if message_id is not None:
        for item in copies:
            if as_str(item.get("id")) == message_id:
                copy = item
                break
    status = as_str(obj.get("status")) or as_str(copy.get("status"))
    message = _message(obj, conversation_contact, status)
    attrs = obj.get("content_attributes")
    if type(attrs) is not dict:
        attrs = _EMPTY
    if type_ == "chat.message.updated" and (
        as_bool(get(attrs, "deleted")) or (as_str(obj.get("status")) or "").lower() == "deleted"
    ):
        type_ = "chat.message.deleted"
    contact_obj = obj.get("contact")
    if type(contact_obj) is dict:
        _plain(contact_obj, _PERSON_KEYS)
    contact_obj = contact_obj or conversation_contact
    if contact_obj is None and message.sender is not None and message.sender.type == "contact":
        contact_obj = obj.get("sender")  # checked by _message

    account = _account(obj, conversation, copies)
    account_id = account.id if account else ""
    time = message.created_at
    if type_ == "chat.message.created" and message.id:
        identity = f"message:{account_id}:{message.id}"
    else:
        time = as_time(copy.get("updated_at"))
        if type_ == "chat.message.deleted" and message.id:
            identity = f"deleted:{account_id}:{message.id}"
        else:
            identity = body_digest(inbound.body)
    if time is not None and type_ != "chat.message.created":
        message = msgspec.structs.replace(message, updated_at=time)
    actor = message.sender
    if type_ == "chat.message.updated":
        submitted = get(attrs, "submitted_values")
        if submitted and isinstance(submitted, Mapping | list):
            actor = _actor(conversation_contact, "contact") or actor
    data = EventData(
        provider="chatwoot",
        source=inbound.source,
        provider_event=event,
        account=account,
        inbox=_inbox(obj, conversation),
        conversation=_conversation(conversation, meta),
        message=message,
        contact=_contact(contact_obj),
        actor=actor,
        extensions=_extensions(
            inbound,
            ("message", _message_extension(obj)),
            ("conversation", _conversation_extension(conversation) if conversation else None),
            (
                "contact",
                leftovers(contact_obj, parts.CONTACT_KEYS) if type(contact_obj) is dict else None,
            ),
        ),
    )
    return _envelope(inbound, type_, identity, time, data)


def _envelope(
    inbound: Inbound, type_: EventType, identity: str, time: str | None, data: EventData
) -> CloudEvent:
    """:func:`normalize._finish` and :func:`build_event` in one."""
    conversation, contact = data.conversation, data.contact
    if conversation is not None and conversation.id is not None:
        partition: str | None = conversation.id
        subject: str | None = f"conversation/{conversation.id}"
    elif contact is not None and contact.id is not None:
        partition = subject = f"contact/{contact.id}"
    else:
        partition = subject = None
    source = inbound.source
    return CloudEvent(
        specversion="1.0",
        id=event_id(source, type_, identity),
        source=f"relay/{source}",
        type=type_,
        subject=subject,
        time=time or inbound.received_at,
        datacontenttype="application/json",
        dataschema=DATASCHEMA,
        partitionkey=f"{source}:{partition}" if partition else source,
        providerdelivery=inbound.delivery_id,
        data=data,
    )


def conversation_event_fast(
    inbound: Inbound, obj: dict[str, Any], event: str, type_: EventType
) -> CloudEvent:
    """:func:`normalize.conversation_event`: the body is the conversation."""
    if "conversation" in obj or not _UNMODELLED_CONVERSATION.isdisjoint(obj):
        raise Fallback
    _plain(obj, _CONVERSATION_SEEN)
    meta = _object(obj.get("meta"), _META_KEYS)
    sender = meta.get("sender")
    if type(sender) is dict:
        _plain(sender, _PERSON_KEYS)
    copies = _copies(obj)
    account = _account(obj, obj, copies)
    conversation = _conversation(obj, meta)
    if conversation is not None and conversation.id is None:
        conversation = None
    changes = parts.changes(obj)
    if type_ == "chat.conversation.created" and conversation is not None:
        identity = f"conversation:{account.id if account else ''}:{conversation.id}"
        time = conversation.created_at
    else:
        identity = body_digest(inbound.body)
        time = parts.change_time(changes) or (
            conversation.updated_at if conversation is not None else None
        )
    data = EventData(
        provider="chatwoot",
        source=inbound.source,
        provider_event=event,
        account=account,
        inbox=_inbox(obj, obj),
        conversation=conversation,
        contact=_contact(sender),
        changes=changes,
        extensions=_extensions(
            inbound,
            ("conversation", _conversation_extension(obj)),
            ("contact", leftovers(sender, parts.CONTACT_KEYS) if type(sender) is dict else None),
        ),
    )
    return _envelope(inbound, type_, identity, time, data)


def contact_event_fast(
    inbound: Inbound, obj: dict[str, Any], event: str, type_: EventType
) -> CloudEvent:
    """:func:`normalize.contact_event`: the body is the contact."""
    if not _UNMODELLED_CONTACT.isdisjoint(obj):
        raise Fallback
    _plain(obj, _CONTACT_SEEN)
    contact = _contact(obj)
    account = _account(obj, _EMPTY, [])
    changes = parts.changes(obj)
    if type_ == "chat.contact.created" and contact is not None and contact.id:
        identity = f"contact:{account.id if account else ''}:{contact.id}"
        time = as_time(obj.get("created_at"))
    else:
        identity = body_digest(inbound.body)
        updated = obj.get("updated_at")
        time = parts.change_time(changes) or as_time(
            updated if updated is not None else obj.get("created_at")
        )
    data = EventData(
        provider="chatwoot",
        source=inbound.source,
        provider_event=event,
        account=account,
        contact=contact,
        changes=changes,
        extensions=_extensions(inbound, ("contact", leftovers(obj, parts.CONTACT_KEYS))),
    )
    return _envelope(inbound, type_, identity, time, data)


# For conversation and contact bodies, keys that name another object the tolerant
# account lookup would read.
_UNMODELLED_CONVERSATION = frozenset({"current_conversation"})
_UNMODELLED_CONTACT = frozenset({"conversation", "current_conversation", "messages"})
_CONTACT_SEEN = _PERSON_KEYS | parts.CONTACT_KEYS

FastBuilder = Callable[[Inbound, dict[str, Any], str, EventType], CloudEvent]
_FAST_BUILDERS: dict[Builder, FastBuilder] = {
    message_event: message_event_fast,
    conversation_event: conversation_event_fast,
    contact_event: contact_event_fast,
}
_TOP_KEYS = content.MESSAGE_KEYS | {"source_id", "processed_message_content"}


def normalize_fast(inbound: Inbound) -> list[CloudEvent]:
    """The fast path: the same events as the tolerant path, or :class:`Fallback`."""
    payload = _decode(inbound.body)
    try:
        if type(payload) is not dict:
            raise Fallback
        event = as_str(_plain(payload, _TOP_KEYS).get("event"))
        if event is None:
            raise Fallback
        entry = EVENTS.get(event.removeprefix(AUTOMATION_PREFIX))
        if entry is None:
            raise Fallback
        type_, builder = entry
        fast = _FAST_BUILDERS.get(builder)
        if fast is None:
            raise Fallback
        return [fast(inbound, payload, event, type_)]
    except Fallback:
        raise Fallback(payload) from None
