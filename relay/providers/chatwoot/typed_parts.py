"""What the typed path's readers share (:mod:`relay.providers.chatwoot.typed`): a typed
person, conversation pass-through, account and extensions read as the dict path reads
theirs, through the same value-taking builders."""

from __future__ import annotations

import keyword
from collections.abc import Callable
from typing import Any

from msgspec import UNSET

from relay.events import Account, Actor, Contact, Conversation, Inbox
from relay.providers.chatwoot import conversations, parts, shapes
from relay.providers.chatwoot.parts import text_of
from relay.providers.extensions import fit

_CONTAINERS = (dict, list)


class NotTyped(Exception):
    """A body the typed path leaves to the dict path (its events are the same either way)."""


def extensions(
    body_size: int,
    message: dict[str, Any] | None,
    conversation: dict[str, Any] | None,
    contact: dict[str, Any] | None,
) -> dict[str, Any] | None:
    """``Read.extensions`` of an event's parts (None: none), without its tuples."""
    found = {}
    if message:
        found["message"] = message
    if conversation:
        found["conversation"] = conversation
    if contact:
        found["contact"] = contact
    kept = fit(found, body_size)
    return {"chatwoot": kept} if kept else None


def actor_of(person: shapes.Person | None, default_type: str = "contact") -> Actor | None:
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


def contact_of(person: shapes.Person | None) -> tuple[Contact | None, dict[str, Any] | None]:
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
    return contact, person_pass(person)


def _leftovers_reader(names: tuple[str, ...]) -> Callable[[Any], dict[str, Any] | None]:
    """A function giving ``{name: value}`` of a Struct's ``names`` that are not null nor
    an empty object or list, in ``names``' order, or None: the dict path's pass-through of
    those keys. Written out as one line a name (generated, as dataclasses generate their
    ``__init__``): a loop over the names costs three times as much."""
    if not all(name.isidentifier() and not keyword.iskeyword(name) for name in names):
        raise ValueError(f"not attribute names: {names!r}")
    lines = [
        f"    if (v := obj.{name}) is not None and (v or type(v) not in containers):\n"
        f"        found[{name!r}] = v\n"
        for name in names
    ]
    source = "def leftovers(obj):\n    found = {}\n" + "".join(lines) + "    return found or None\n"
    scope: dict[str, Any] = {"containers": _CONTAINERS}
    exec(compile(source, f"<leftovers of {names[0]}...>", "exec"), scope)
    reader: Callable[[Any], dict[str, Any] | None] = scope["leftovers"]
    return reader


conversation_pass = _leftovers_reader(parts.CONVERSATION_PASS)
"""The pass-through of a typed conversation (``parts.CONVERSATION_PASS``)."""
person_pass = _leftovers_reader(parts.PERSON_PASS)
"""The pass-through of a typed contact or user (``parts.PERSON_PASS``)."""


def kept(value: Any) -> bool:
    """Whether the pass-through keeps a value: not null, not an empty object or list."""
    return value is not None and (bool(value) or type(value) not in _CONTAINERS)


def needed(value: Any) -> Any:
    """A copy's value the reader needs: not sent as spelt, the dict path's to look for."""
    if value is UNSET:
        raise NotTyped
    return value


def latest(message_id: str | None, copies: list[shapes.Copy] | None) -> shapes.Copy | None:
    """The conversation's copy of this message (the dict path's ``latest``)."""
    if message_id is None or not copies:
        return None
    for copy in copies:
        v = needed(copy.id)
        if (str(v) if type(v) is int else text_of(v)) == message_id:
            return copy
    return None


def conversation_of(c: shapes.ConversationBody, meta: shapes.Meta) -> Conversation:
    """``conversations.conversation_of`` of a typed conversation and its meta."""
    updated = c.updated_at
    if updated is None:
        updated = c.last_activity_at
        if updated is None:
            updated = c.timestamp
    return conversations.conversation_from(
        meta.team,
        meta.assignee,
        c.id,
        c.display_id,
        c.status,
        c.inbox_id,
        c.channel,
        c.labels,
        c.priority,
        c.created_at,
        updated,
        c.snoozed_until,
        c.custom_attributes,
        c.additional_attributes,
    )


def inbox_of(inbox: shapes.Small | None, inbox_id: Any, channel: Any) -> Inbox | None:
    """``parts.inbox`` of a typed body's inbox and its conversation's ``inbox_id`` and
    ``channel``."""
    found = inbox or shapes.NO_SMALL
    return parts.inbox_from(found.id, found.name, found.channel_type, inbox_id, channel)


def account_of(
    small: shapes.Small | None,
    account_id: Any,
    conversation_account_id: Any,
    copies: list[shapes.Copy] | None,
) -> Account | None:
    """``parts.account`` of a typed body: its account's id, else an ``account_id`` of the
    body, of its conversation, or of the conversation's messages."""
    small = small or shapes.NO_SMALL
    v = small.id
    found = (str(v) if type(v) is int else text_of(v)) or text_of(account_id)
    if found is None:
        found = None if conversation_account_id is None else text_of(conversation_account_id)
        for copy in copies if found is None and copies else ():
            found = text_of(needed(copy.account_id))
            if found is not None:
                break
    return parts.account_from(found, small.name)
