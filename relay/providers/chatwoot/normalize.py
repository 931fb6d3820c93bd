"""Chatwoot (and white-labels: Nexloo, Trino AI, ...) webhooks → canonical events.

The event name is the body's ``event`` field; one table maps it to the canonical type and
the builder that makes the event. Every object is read through
:func:`relay.providers.fast.clean`: at dict speed, with what the tolerant readers would
find when a key carries stray whitespace (tests/unit/providers/test_fast.py holds this to
the tolerant normalizer it replaced, byte for byte).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from relay.events import Account, CloudEvent, EventData, EventType, Message, Typing
from relay.events import Widget as WidgetPart
from relay.providers.base import (
    Inbound,
    Unmappable,
    body_digest,
    build_event,
    parse_json,
    require_object,
)
from relay.providers.chatwoot import content, conversations, parts
from relay.providers.chatwoot.parts import CONVERSATION_SEEN, META_KEYS, text_of
from relay.providers.coerce import as_bool, as_time, get, get_obj, get_str
from relay.providers.extensions import bounded
from relay.providers.fast import clean, forgetting, time_of
from relay.providers.fast import read as read_object

AUTOMATION_PREFIX = "automation_event."
_EMPTY: dict[str, Any] = {}
_MISSING: Any = object()
# What a body's top level holds, for any event (speeds up clean(), which needs no list).
_BODY_KEYS = (
    content.MESSAGE_SEEN
    | parts.CONVERSATION_SEEN
    | parts.PERSON_SEEN
    | {"source_id", "current_conversation", "event_info", "user", "is_private"}
)
_COPY_KEYS = content.MESSAGE_SEEN | {"sentiment", "external_source_ids"}


class Read(msgspec.Struct):
    """One body on its way to an event: what every builder gets (a Struct: built at C
    speed, where a NamedTuple's ``__new__`` is Python)."""

    inbound: Inbound
    payload: dict[str, Any]
    """The body as decoded (extensions are its keys as sent)."""
    top: Mapping[str, Any]
    """The body cleaned, to read from."""
    event: str
    account: Account | None
    rest: dict[str, Any] | None
    """The body's pass-through against its builder's keys (:data:`TOP_KEYS`)."""

    def data(self, **found: Any) -> EventData:
        return event_data(self.inbound, self.event, self.account, **found)

    def extensions(self, *found: tuple[str, dict[str, Any] | None]) -> Any:
        kept = bounded(found, len(self.inbound.body))
        return {"chatwoot": kept} if kept else None

    def finish(
        self, type_: EventType, identity: str | None, time: str | None, data: EventData
    ) -> CloudEvent:
        return finish(self.inbound, type_, identity, time, data)

    @property
    def account_id(self) -> str | None:
        """For event ids: an account without an id spells ``None`` (as ids always have)."""
        return self.account.id if self.account else ""


def event_data(inbound: Inbound, event: str, account: Account | None, **found: Any) -> EventData:
    """A Chatwoot event's data: its provider, source, event name and account, and ``found``."""
    return EventData(
        provider="chatwoot",
        source=inbound.source,
        provider_event=event,
        account=account,
        **found,
    )


def finish(
    inbound: Inbound, type_: EventType, identity: str | None, time: str | None, data: EventData
) -> CloudEvent:
    """The envelope: keyed by conversation, else by contact; ``identity`` None: the body's
    digest (an event Chatwoot gives no id of its own)."""
    conversation, contact = data.conversation, data.contact
    if conversation is not None and conversation.id is not None:
        partition: str | None = conversation.id
        subject: str | None = f"conversation/{conversation.id}"
    elif contact is not None and contact.id is not None:
        partition = subject = f"contact/{contact.id}"
    else:
        partition = subject = None
    return build_event(
        inbound,
        type_=type_,
        identity=identity or body_digest(inbound.body),
        time=time,
        partition=partition,
        subject=subject,
        data=data,
    )


Builder = Callable[[Read, EventType], CloudEvent]


def _latest(message_id: str | None, conversation: Mapping[str, Any]) -> Mapping[str, Any]:
    """The conversation's copy of this message (``conversation.messages[]``) as decoded:
    read it with :func:`_copy_get`."""
    items = conversation.get("messages")
    if message_id is None or type(items) is not list:
        return _EMPTY
    for item in items:
        if type(item) is not dict:
            continue
        v = item.get("id", _MISSING)  # _copy_get inline: this runs for every copy
        if v is _MISSING:
            v = clean(item, _COPY_KEYS).get("id")
        if (str(v) if type(v) is int else text_of(v)) == message_id:
            return item
    return _EMPTY


def _copy_get(copy: Mapping[str, Any], key: str) -> Any:
    """``clean(copy).get(key)``, the object's keys looked at only when ``key`` is absent (a
    key present as spelt is what the cleaned view answers too)."""
    value = copy.get(key, _MISSING)
    return clean(copy, _COPY_KEYS).get(key) if value is _MISSING else value


def _view(obj: Any, seen: frozenset[str]) -> Mapping[str, Any]:
    """:func:`clean`, an object of only the keys Chatwoot sends answered without a call."""
    return obj if type(obj) is dict and obj.keys() <= seen else clean(obj, seen)


def message_event(read: Read, type_: EventType) -> CloudEvent:
    top = read.top
    conversation_obj = top.get("conversation")
    if type(conversation_obj) is not dict:
        conversation_obj = _EMPTY
    message_obj: dict[str, Any] = read.payload
    message_view = top
    if not conversation_obj and top.get("message_type") is None:
        # Automation rules post the conversation even for message events: the message is
        # the conversation's latest.
        conversation_obj = read.payload
        listed = top.get("messages")
        messages = [m for m in listed if type(m) is dict] if type(listed) is list else []
        message_obj = messages[-1] if messages else _EMPTY
        message_view = _view(message_obj, content.MESSAGE_SEEN)
    # each object's keys looked at once: its view and its pass-through together
    conversation, conversation_found = read_object(conversation_obj, parts.CONVERSATION_KEYS)
    meta = conversation.get("meta")
    if type(meta) is not dict or not meta.keys() <= META_KEYS:
        meta = clean(meta, META_KEYS)
    conversation_contact = meta.get("sender")
    copy = _latest(str(v) if type(v := message_view.get("id")) is int else text_of(v), conversation)
    # A read receipt on message_updated has no top-level status; only the copy says `read`.
    status = (None if (v := message_view.get("status")) is None else text_of(v)) or (
        v
        if type(v := _copy_get(copy, "status")) is str and v and not v.isspace()
        else None
        if v is None
        else text_of(v)
    )
    message = content.message_of(message_view, conversation_contact, status)
    if type_ == "chat.message.updated" and content.is_deleted(message_view):
        type_ = "chat.message.deleted"
    contact_obj = top.get("contact") or conversation_contact
    if contact_obj is None and message.sender is not None and message.sender.type == "contact":
        contact_obj = top.get("sender")
    time = message.created_at
    identity = None
    if type_ == "chat.message.created" and message.id:
        identity = f"message:{read.account_id}:{message.id}"
    else:
        if type_ == "chat.message.deleted" and message.id:
            identity = f"deleted:{read.account_id}:{message.id}"
        time = time_of(_copy_get(copy, "updated_at"))  # the change's time, when Chatwoot says
        if time is not None and type_ != "chat.message.created":
            message = _with_updated_at(message, time)
    actor = message.sender
    if type_ == "chat.message.updated" and content.is_submission(message_view):
        # the contact answered the survey, select or form: the change is theirs
        actor = parts.actor(conversation_contact) or actor
    contact, contact_found = parts.contact_and_extension(contact_obj)
    data = EventData(  # read.data(...), without a dict of keywords
        provider="chatwoot",
        source=read.inbound.source,
        provider_event=read.event,
        account=read.account,
        inbox=parts.inbox(top, conversation),
        conversation=conversations.conversation_of(conversation, meta)
        if conversation_obj
        else None,
        message=message,
        contact=contact,
        actor=actor,
        extensions=read.extensions(
            (
                "message",
                content.message_rest(top, read.rest)
                if message_obj is read.payload
                else content.message_extension(message_obj)
                if message_obj
                else None,
            ),
            ("conversation", conversations.conversation_rest(conversation, conversation_found)),
            ("contact", contact_found),
        ),
    )
    return read.finish(type_, identity, time, data)


def _with_updated_at(message: Message, time: str) -> Message:
    return msgspec.structs.replace(message, updated_at=time)


def conversation_event(read: Read, type_: EventType) -> CloudEvent:
    """The body is the conversation."""
    top = read.top
    # top: the body cleaned
    conversation = conversations.conversation_of(top) if read.payload else None
    if conversation is not None and conversation.id is None:
        conversation = None
    changes = parts.changes(top)
    identity = time = None
    if type_ == "chat.conversation.created" and conversation is not None:
        identity = f"conversation:{read.account_id}:{conversation.id}"
        time = conversation.created_at
    else:
        time = parts.change_time(changes) or (
            conversation.updated_at if conversation is not None else None
        )
    sender = clean(top.get("meta"), META_KEYS).get("sender")
    contact, contact_found = parts.contact_and_extension(sender)
    data = read.data(
        inbox=parts.inbox(top, top),
        conversation=conversation,
        contact=contact,
        changes=changes,
        extensions=read.extensions(
            ("conversation", conversations.conversation_rest(top, read.rest)),
            ("contact", contact_found),
        ),
    )
    return read.finish(type_, identity, time, data)


def typing_event(read: Read, type_: EventType) -> CloudEvent:
    top = read.top
    conversation_obj = top.get("conversation")
    conversation = clean(conversation_obj, CONVERSATION_SEEN)
    data = read.data(
        inbox=parts.inbox(top, conversation),
        conversation=conversations.conversation(conversation_obj),
        contact=parts.contact(clean(conversation.get("meta"), META_KEYS).get("sender")),
        # Typing from the web widget names the contact as `user`, without a `type` key.
        actor=parts.actor(top.get("user"), default_type="contact"),
        typing=Typing(private=as_bool(top.get("is_private")) or False),
    )
    return read.finish(type_, None, None, data)


def contact_event(read: Read, type_: EventType) -> CloudEvent:
    """The body is the contact."""
    top = read.top
    contact = parts.contact_of(top) if read.payload else None  # top: the body cleaned
    changes = parts.changes(top)
    identity = None
    if type_ == "chat.contact.created" and contact is not None and contact.id:
        identity = f"contact:{read.account_id}:{contact.id}"
        time = time_of(top.get("created_at"))
    else:
        updated = top.get("updated_at")
        time = parts.change_time(changes) or time_of(
            updated if updated is not None else top.get("created_at")
        )
    data = read.data(
        contact=contact,
        changes=changes,
        extensions=read.extensions(("contact", read.rest)),
    )
    return read.finish(type_, identity, time, data)


def widget_event(read: Read, type_: EventType) -> CloudEvent:
    top = read.top
    info = get_obj(top, "event_info")
    current = top.get("current_conversation")
    widget = WidgetPart(
        referer=get_str(info, "referer"),
        language=get_str(info, "widget_language"),
        browser_language=get_str(info, "browser_language"),
        initiated_at=as_time(get(info, "initiated_at")),
        browser=parts.dict_or_none(get(info, "browser")),
    )
    data = read.data(
        inbox=parts.inbox(top, clean(current, CONVERSATION_SEEN)),
        conversation=conversations.conversation(current),
        contact=parts.contact(top.get("contact")),
        widget=widget,
    )
    return read.finish(type_, None, widget.initiated_at, data)


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


TOP_KEYS: dict[Builder, frozenset[str]] = {
    message_event: content.MESSAGE_KEYS,
    conversation_event: parts.CONVERSATION_KEYS,
    contact_event: parts.CONTACT_KEYS,
    typing_event: _BODY_KEYS,
    widget_event: _BODY_KEYS,
}
"""What each builder's body is, for its pass-through (``Read.rest``)."""


def normalize_payload(inbound: Inbound, payload: Any) -> list[CloudEvent]:
    """A decoded Chatwoot body as its event."""
    body = require_object(payload)
    event = body.get("event", _MISSING)
    if event is _MISSING:
        event = clean(body, _BODY_KEYS).get("event")
    if type(event) is not str or not event or event.isspace():
        event = text_of(event)
    if event is None:
        raise Unmappable("missing_event", "the body has no `event` field")
    entry = EVENTS.get(event.removeprefix(AUTOMATION_PREFIX))
    if entry is None:
        raise Unmappable("unknown_event", f"unknown Chatwoot event {event!r}")
    type_, builder = entry
    top, rest = read_object(body, TOP_KEYS[builder])
    return [builder(Read(inbound, body, top, event, parts.account(top), rest), type_)]


def _tolerant(inbound: Inbound, payload: Any = None) -> list[CloudEvent]:
    """Any Chatwoot body (the fast path's fallback: a body msgspec cannot decode, such as
    one with a lone surrogate).

    ``payload``: the body already decoded, or None to decode it here.
    """
    return normalize_payload(inbound, parse_json(inbound.body) if payload is None else payload)


normalize_tolerant = forgetting(_tolerant)
