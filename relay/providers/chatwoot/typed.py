"""The typed fast path for Chatwoot message events (issue 16 point 6).

A ``message_created``/``message_updated`` body as Chatwoot's builders write it is decoded
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

from typing import Any

import msgspec
from msgspec import UNSET

from relay.events import Actor, CloudEvent, Contact, EventData, EventType
from relay.providers.base import Inbound
from relay.providers.chatwoot import content, conversations, parts, shapes
from relay.providers.chatwoot.normalize import AUTOMATION_PREFIX, EVENTS, finish, message_event
from relay.providers.chatwoot.parts import text_of
from relay.providers.chatwoot.shapes import decode
from relay.providers.extensions import fit
from relay.providers.fast import time_of

_CONTAINERS = (dict, list)


class NotTyped(Exception):
    """A body the typed path leaves to the dict path (its events are the same either way)."""


# Chatwoot's message bodies end with their event's name (its builders merge it in last);
# any other body goes straight to the dict path. A wrong guess costs time, never an answer:
# the typed path checks itself.
_ENDS = (b'"event":"message_created"}', b'"event":"message_updated"}')
_HINTS = (b'"message_created"', b'"message_updated"')


def may_be_typed(body: bytes) -> bool:
    return body.endswith(_ENDS) or _HINTS[0] in body or _HINTS[1] in body


def normalize_typed(inbound: Inbound) -> list[CloudEvent]:
    """The events of a Chatwoot message body on the typed path, or :class:`NotTyped` (or
    msgspec's refusal) for the dict path to read it."""
    body = decode(inbound.body)
    event = body.event
    entry = EVENTS.get(event.removeprefix(AUTOMATION_PREFIX)) if event else None
    conversation = body.conversation
    if entry is None or entry[1] is not message_event or conversation is None:
        raise NotTyped
    return [_message_event(inbound, event, entry[0], body, conversation)]


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
    small = body.account or shapes.NO_SMALL
    v = small.id
    account = parts.account_from(
        (str(v) if type(v) is int else text_of(v)) or _account_id(body, conversation, copies),
        small.name,
    )
    meta = conversation.meta or shapes.NO_META
    conversation_contact = meta.sender
    message_id = str(v) if type(v := body.id) is int else text_of(v)
    copy = _latest(message_id, copies)
    status = text_of(body.status) or (None if copy is None else text_of(_needed(copy.status)))
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
        _actor,
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
        time = None if copy is None else time_of(_needed(copy.updated_at))
        if time is not None and type_ != "chat.message.created":
            message = msgspec.structs.replace(message, updated_at=time)
    actor = message.sender
    if type_ == "chat.message.updated" and content.is_submission_of(attributes):
        actor = _actor(conversation_contact) or actor
    contact, contact_found = _contact(contact_obj)
    updated = conversation.updated_at
    if updated is None:
        updated = conversation.last_activity_at
        if updated is None:
            updated = conversation.timestamp
    inbox = body.inbox or shapes.NO_SMALL
    source_id = body.source_id
    data = EventData(
        provider="chatwoot",
        source=inbound.source,
        provider_event=event,
        account=account,
        inbox=parts.inbox_from(
            inbox.id, inbox.name, inbox.channel_type, conversation.inbox_id, conversation.channel
        ),
        conversation=conversations.conversation_from(
            meta.team,
            meta.assignee,
            conversation.id,
            conversation.display_id,
            conversation.status,
            conversation.inbox_id,
            conversation.channel,
            conversation.labels,
            conversation.priority,
            conversation.created_at,
            updated,
            conversation.snoozed_until,
            conversation.custom_attributes,
            conversation.additional_attributes,
        ),
        message=message,
        contact=contact,
        actor=actor,
        extensions=_extensions(
            len(inbound.body),
            content.with_additional(
                {"source_id": source_id} if _kept(source_id) else None,
                body.additional_attributes,
            ),
            conversations.with_contact_inbox(_passed(conversation), conversation.contact_inbox),
            contact_found,
        ),
    )
    return finish(inbound, type_, identity, time, data)


def _extensions(
    body_size: int,
    message: dict[str, Any] | None,
    conversation: dict[str, Any] | None,
    contact: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """``Read.extensions`` of a message event's three parts (without its tuples)."""
    found = {}
    if message:
        found["message"] = message
    if conversation:
        found["conversation"] = conversation
    if contact:
        found["contact"] = contact
    kept = fit(found, body_size)
    return {"chatwoot": kept} if kept else None


def _actor(person: shapes.Person | None, default_type: str = "contact") -> Actor | None:
    """``parts.actor`` of a typed person."""
    if person is None:
        return None
    return parts.actor_from(
        person.type,
        person.id,
        person.name,
        person.available_name,
        person.email,
        person.phone_number,
        default_type,
    )


def _contact(person: shapes.Person | None) -> tuple[Contact | None, dict[str, Any] | None]:
    """``parts.contact_and_extension`` of a typed person."""
    if person is None:
        return None, None
    contact = parts.contact_from(
        person.id,
        person.name,
        person.phone_number,
        person.email,
        person.identifier,
        person.avatar,
        person.thumbnail,
        person.avatar_url,
        person.custom_attributes,
    )
    # shapes.PERSON_PASS, written out: a loop over the names costs three times as much
    found = {}
    if (v := person.additional_attributes) is not None and (v or type(v) not in _CONTAINERS):
        found["additional_attributes"] = v
    if (v := person.blocked) is not None and (v or type(v) not in _CONTAINERS):
        found["blocked"] = v
    if (v := person.available_name) is not None and (v or type(v) not in _CONTAINERS):
        found["available_name"] = v
    if (v := person.availability_status) is not None and (v or type(v) not in _CONTAINERS):
        found["availability_status"] = v
    if (v := person.last_activity_at) is not None and (v or type(v) not in _CONTAINERS):
        found["last_activity_at"] = v
    return contact, found or None


def _kept(value: Any) -> bool:
    """Whether the pass-through keeps a value: not null, not an empty object or list."""
    return value is not None and (bool(value) or type(value) not in _CONTAINERS)


def _passed(c: shapes.ConversationBody) -> dict[str, Any] | None:
    """The conversation's pass-through (shapes.CONVERSATION_PASS, written out: a loop
    over the names costs three times as much)."""
    found = {}
    if (v := c.can_reply) is not None and (v or type(v) not in _CONTAINERS):
        found["can_reply"] = v
    if (v := c.unread_count) is not None and (v or type(v) not in _CONTAINERS):
        found["unread_count"] = v
    if (v := c.first_reply_created_at) is not None and (v or type(v) not in _CONTAINERS):
        found["first_reply_created_at"] = v
    if (v := c.waiting_since) is not None and (v or type(v) not in _CONTAINERS):
        found["waiting_since"] = v
    if (v := c.agent_last_seen_at) is not None and (v or type(v) not in _CONTAINERS):
        found["agent_last_seen_at"] = v
    if (v := c.contact_last_seen_at) is not None and (v or type(v) not in _CONTAINERS):
        found["contact_last_seen_at"] = v
    if (v := c.assignee_last_seen_at) is not None and (v or type(v) not in _CONTAINERS):
        found["assignee_last_seen_at"] = v
    return found or None


def _needed(value: Any) -> Any:
    """A copy's value the reader needs: not sent as spelt, the dict path's to look for."""
    if value is UNSET:
        raise NotTyped
    return value


def _latest(message_id: str | None, copies: list[shapes.Copy] | None) -> shapes.Copy | None:
    """The conversation's copy of this message (the dict path's ``_latest``)."""
    if message_id is None or not copies:
        return None
    for copy in copies:
        v = _needed(copy.id)
        if (str(v) if type(v) is int else text_of(v)) == message_id:
            return copy
    return None


def _account_id(
    body: shapes.MessageBody,
    conversation: shapes.ConversationBody,
    copies: list[shapes.Copy] | None,
) -> Any:
    """``parts.account``'s id of a typed body whose account says none: an ``account_id``
    of the body, of its conversation or of the conversation's messages."""
    found = text_of(body.account_id)
    if found is None:
        found = None if (v := conversation.account_id) is None else text_of(v)
        for copy in copies if found is None and copies else ():
            found = text_of(_needed(copy.account_id))
            if found is not None:
                break
    return found


__all__ = ["NotTyped", "may_be_typed", "normalize_typed"]
