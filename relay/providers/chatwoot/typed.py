"""The typed fast path for Chatwoot message, conversation and contact events (issue 16
point 6).

A message, conversation or contact event's body as Chatwoot's builders write it is decoded
straight into the Structs of :mod:`relay.providers.chatwoot.shapes` (the keys relay's dict
reader knows for each object; any other key, or one with stray whitespace, is a refusal)
and read by attribute. What the values mean is the dict reader's, through the same
value-taking builders (:func:`relay.providers.chatwoot.content.message_from`,
:func:`relay.providers.chatwoot.conversations.conversation_from`,
:func:`relay.providers.chatwoot.parts.actor_from`, ...).

Whatever this path does not take raises :class:`NotTyped` (or msgspec's refusal) and the
body is read by the dict path instead, with the same events as a result; tests hold the
two to each other (tests/unit/providers/chatwoot/test_typed.py). The one visible
difference: the pass-through of a conversation or contact lists its keys in Chatwoot's
order rather than in the order a body sent them; JSON objects are unordered, and
docs/events.md says so of the pass-through.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from relay.events import CloudEvent, EventData, EventType
from relay.providers.base import Inbound
from relay.providers.chatwoot import content, conversations, parts, shapes
from relay.providers.chatwoot.normalize import (
    AUTOMATION_PREFIX,
    EVENTS,
    Builder,
    contact_event,
    conversation_event,
    event_data,
    finish,
    message_event,
)
from relay.providers.chatwoot.parts import text_of
from relay.providers.chatwoot.typed_parts import (
    NotTyped,
    account_of,
    actor_of,
    contact_of,
    conversation_of,
    conversation_pass,
    extensions,
    inbox_of,
    kept,
    latest,
    needed,
)
from relay.providers.fast import time_of

Reader = Callable[[Inbound], list[CloudEvent]]

_EVENT_KEY = b'"event":"'
_SPACED_KEY = b'"event"'


def typed_reader(body: bytes) -> Reader | None:
    """The typed reader for a body, chosen by its last compact ``"event":"..."`` (Chatwoot
    writes the key near the end), else its last spaced one; None: the dict path's. A wrong
    guess costs time, never an answer: each reader checks the event it decoded."""
    at = body.rfind(_EVENT_KEY)
    if at < 0:
        return _spaced_reader(body)
    start = at + len(_EVENT_KEY)
    return _READERS.get(body[start : body.find(b'"', start)])


def _spaced_reader(body: bytes) -> Reader | None:
    """:func:`typed_reader` of a body with whitespace around the key's colon."""
    at = body.rfind(_SPACED_KEY)
    if at < 0:
        return None
    rest = body[at + len(_SPACED_KEY) : at + 64].lstrip()
    if rest[:1] != b":":
        return None
    rest = rest[1:].lstrip()
    end = rest.find(b'"', 1)
    return _READERS.get(rest[1:end]) if rest[:1] == b'"' and end > 0 else None


def _builder_of(event: object, builder: Builder) -> EventType:
    """The canonical type of a decoded event name read by ``builder``, or NotTyped."""
    entry = EVENTS.get(event.removeprefix(AUTOMATION_PREFIX)) if type(event) is str else None
    if entry is None or entry[1] is not builder:
        raise NotTyped
    return entry[0]


def read_message(inbound: Inbound) -> list[CloudEvent]:
    """A message event's body on the typed path (NotTyped or msgspec's refusal: the dict
    path's)."""
    body = shapes.decode_message(inbound.body)
    event = body.event
    type_ = _builder_of(event, message_event)
    conversation = body.conversation
    if conversation is None:  # the automation shape, or a message without one: the dict path's
        raise NotTyped
    return [_message_event(inbound, event, type_, body, conversation)]


def _message_event(
    inbound: Inbound,
    event: str,
    type_: EventType,
    body: shapes.MessageBody,
    conversation: shapes.ConversationBody,
) -> CloudEvent:
    """:func:`relay.providers.chatwoot.normalize.message_event` of a typed body (its
    automation shape, a message without its conversation, is the dict path's)."""
    copies = conversation.messages
    account = account_of(body.account, body.account_id, conversation.account_id, copies)
    meta = conversation.meta or shapes.NO_META
    conversation_contact = meta.sender
    message_id = str(v) if type(v := body.id) is int else text_of(v)
    copy = latest(message_id, copies)
    status = text_of(body.status) or (None if copy is None else text_of(needed(copy.status)))
    attributes = body.content_attributes
    message = content.message_from(
        body.id,
        body.message_type,
        body.content_type,
        body.content,
        body.processed_message_content,
        attributes,
        body.additional_attributes,
        body.attachments,
        body.sender,
        body.private,
        body.created_at,
        conversation_contact,
        status,
        actor_of,
    )
    if type_ == "chat.message.updated" and content.is_deleted_of(attributes, body.status):
        type_ = "chat.message.deleted"
    contact_obj = body.contact or conversation_contact
    if contact_obj is None and message.sender is not None and message.sender.type == "contact":
        contact_obj = body.sender
    time = message.created_at
    identity = None
    account_key = account.id if account else ""
    if type_ == "chat.message.created" and message.id:
        identity = f"message:{account_key}:{message.id}"
    else:
        if type_ == "chat.message.deleted" and message.id:
            identity = f"deleted:{account_key}:{message.id}"
        time = None if copy is None else time_of(needed(copy.updated_at))
        if time is not None and type_ != "chat.message.created":
            message = msgspec.structs.replace(message, updated_at=time)
    actor = message.sender
    if type_ == "chat.message.updated" and content.is_submission_of(attributes):
        actor = actor_of(conversation_contact) or actor
    contact, contact_found = contact_of(contact_obj)
    source_id = body.source_id
    data = EventData(  # event_data(...), without a dict of keywords: this is the hot body
        provider="chatwoot",
        source=inbound.source,
        provider_event=event,
        account=account,
        inbox=inbox_of(body.inbox, conversation.inbox_id, conversation.channel),
        conversation=conversation_of(conversation, meta),
        message=message,
        contact=contact,
        actor=actor,
        extensions=extensions(
            len(inbound.body),
            content.with_additional(
                {"source_id": source_id} if kept(source_id) else None,
                body.additional_attributes,
            ),
            conversations.with_contact_inbox(
                conversation_pass(conversation), conversation.contact_inbox
            ),
            contact_found,
        ),
    )
    return finish(inbound, type_, identity, time, data)


def read_conversation(inbound: Inbound) -> list[CloudEvent]:
    """:func:`relay.providers.chatwoot.normalize.conversation_event` of a typed body (the
    body is the conversation)."""
    body = shapes.decode_conversation(inbound.body)
    event = body.event
    type_ = _builder_of(event, conversation_event)
    meta = body.meta or shapes.NO_META
    conversation = conversation_of(body, meta)
    if conversation.id is None:
        raise NotTyped  # rare: the dict path's
    account = account_of(body.account, body.account_id, None, body.messages)
    changes = parts.changes_of(body.changed_attributes)
    identity = None
    if type_ == "chat.conversation.created":
        identity = f"conversation:{account.id if account else ''}:{conversation.id}"
        time = conversation.created_at
    else:
        time = parts.change_time(changes) or conversation.updated_at
    contact, contact_found = contact_of(meta.sender)
    data = event_data(
        inbound,
        event,
        account,
        inbox=inbox_of(body.inbox, body.inbox_id, body.channel),
        conversation=conversation,
        contact=contact,
        changes=changes,
        extensions=extensions(
            len(inbound.body),
            None,
            conversations.with_contact_inbox(conversation_pass(body), body.contact_inbox),
            contact_found,
        ),
    )
    return [finish(inbound, type_, identity, time, data)]


def read_contact(inbound: Inbound) -> list[CloudEvent]:
    """:func:`relay.providers.chatwoot.normalize.contact_event` of a typed body (the body
    is the contact)."""
    body = shapes.decode_contact(inbound.body)
    event = body.event
    type_ = _builder_of(event, contact_event)
    contact, found = contact_of(body)
    account = account_of(body.account, None, None, None)
    changes = parts.changes_of(body.changed_attributes)
    identity = None
    if type_ == "chat.contact.created" and contact is not None and contact.id:
        identity = f"contact:{account.id if account else ''}:{contact.id}"
        time = time_of(body.created_at)
    else:
        updated = body.updated_at
        time = parts.change_time(changes) or time_of(
            updated if updated is not None else body.created_at
        )
    data = event_data(
        inbound,
        event,
        account,
        contact=contact,
        changes=changes,
        extensions=extensions(len(inbound.body), None, None, found),
    )
    return [finish(inbound, type_, identity, time, data)]


_READERS: dict[bytes, Reader] = {
    b"message_created": read_message,
    b"message_updated": read_message,
    b"conversation_created": read_conversation,
    b"conversation_updated": read_conversation,
    b"conversation_status_changed": read_conversation,
    b"contact_created": read_contact,
    b"contact_updated": read_contact,
    # automation rules post the conversation for conversation events (the same body); for
    # message events they post it too, a shape the dict path reads
    b"automation_event.conversation_created": read_conversation,
    b"automation_event.conversation_updated": read_conversation,
    b"automation_event.conversation_status_changed": read_conversation,
}


__all__ = ["NotTyped", "read_contact", "read_conversation", "read_message", "typed_reader"]
