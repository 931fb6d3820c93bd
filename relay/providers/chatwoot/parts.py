"""Chatwoot objects → canonical parts: account, inbox, actors, contacts, changes, and the
key tables of every object (conversations: :mod:`relay.providers.chatwoot.conversations`).
Shapes follow Chatwoot's ``webhook_data``/``push_event_data`` builders; see
tests/fixtures/README.md for the facts relied on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from relay.events import (
    Account,
    Actor,
    ActorType,
    Change,
    Contact,
    Inbox,
)
from relay.providers.chatwoot import shapes
from relay.providers.coerce import as_e164, as_str, get
from relay.providers.fast import clean, read, time_of

_ACTOR_TYPES: dict[str, ActorType] = {
    "user": "agent",
    "contact": "contact",
    "agent_bot": "bot",
    "agentbot": "bot",
    "captain_assistant": "bot",
    "bot": "bot",
}


def _in_order(shape: type[msgspec.Struct], names: str) -> tuple[str, ...]:
    """The fields of ``shape`` named in ``names`` (space-separated), in the shape's order
    (Chatwoot's); a name that is not a field is a mistake in relay, said at import."""
    wanted = frozenset(names.split())
    if unknown := wanted.difference(shape.__struct_fields__):
        raise ValueError(f"{shape.__name__} has no fields {sorted(unknown)}")
    return tuple(field for field in shape.__struct_fields__ if field in wanted)


# The keys Chatwoot sends in each object (its webhook_data/push_event_data builders) have
# one home, the Structs of the typed path (:mod:`relay.providers.chatwoot.shapes`); the
# dict path's tables are their fields, for clean(): an object holding only these is read as
# it is after one subset test.
PERSON_PASS = _in_order(
    shapes.Person,
    "additional_attributes blocked available_name availability_status last_activity_at",
)
"""What else a contact or user object holds: the pass-through's, in Chatwoot's order."""
PERSON_SEEN = frozenset(shapes.Person.__struct_fields__)
CONTACT_KEYS = PERSON_SEEN.difference(PERSON_PASS)
"""What a contact or user object says that the canonical contact or actor reads."""
CONVERSATION_PASS = _in_order(
    shapes.ConversationBody,
    "can_reply unread_count first_reply_created_at waiting_since"
    " agent_last_seen_at contact_last_seen_at assignee_last_seen_at",
)
"""What else a conversation holds."""
CONVERSATION_SEEN = frozenset(shapes.ConversationBody.__struct_fields__)
CONVERSATION_KEYS = CONVERSATION_SEEN.difference(CONVERSATION_PASS)
"""What a conversation object says that the canonical conversation reads."""
META_KEYS = frozenset(shapes.Meta.__struct_fields__)
SMALL_KEYS = frozenset(shapes.Small.__struct_fields__)
"""An account or inbox object."""
ACCOUNT_ID = frozenset({"account_id"})


def text_of(value: Any) -> str | None:
    """``as_str``, its two common inputs (text, an integer id) first."""
    if type(value) is str:
        return value if value and not value.isspace() else None
    if type(value) is int:
        return str(value)
    return None if value is None else as_str(value)


def _first_text(avatar: Any, thumbnail: Any, avatar_url: Any) -> str | None:
    """The first of the three that is text (written out: a loop costs more than this)."""
    if avatar is not None and (found := text_of(avatar)) is not None:
        return found
    if thumbnail is not None and (found := text_of(thumbnail)) is not None:
        return found
    return None if avatar_url is None else text_of(avatar_url)


_PHONES: set[str] = set()
"""Phones already found E.164 as sent (a contact's number comes back with each of its
messages, and twice in one message body); bounded."""


def phone(value: Any) -> str | None:
    """:func:`relay.providers.coerce.as_e164`, a number already found E.164 answered from
    :data:`_PHONES`."""
    if type(value) is str and value in _PHONES:
        return value
    found = as_e164(value)
    if found is not None and found == value:
        if len(_PHONES) >= 4096:
            _PHONES.clear()
        _PHONES.add(found)
    return found


def _account_id_of_conversation(value: Any, cleaned: bool = False) -> str | None:
    # Conversation payloads before Chatwoot 4.15 carry no account; their last message does.
    if value is None:
        return None
    conversation = value if cleaned else clean(value, CONVERSATION_SEEN)
    found = None if (v := conversation.get("account_id")) is None else text_of(v)
    messages = conversation.get("messages")
    for message in messages if type(messages) is list and found is None else ():
        v = message.get("account_id", _MISSING) if type(message) is dict else _MISSING
        # a key present as spelt is what the cleaned object answers too
        found = text_of(clean(message, ACCOUNT_ID).get("account_id") if v is _MISSING else v)
        if found is not None:
            break
    return found


_MISSING: Any = object()


def account(payload: Mapping[str, Any]) -> Account | None:
    """The account of a body (cleaned; any event): its ``account``, or an ``account_id`` of
    the body, of its conversation or of their messages."""
    obj = payload.get("account")
    if type(obj) is not dict or not obj.keys() <= SMALL_KEYS:
        obj = clean(obj, SMALL_KEYS)
    v = obj.get("id")
    account_id = (str(v) if type(v) is int else text_of(v)) or (
        text_of(payload.get("account_id"))
        or _account_id_of_conversation(payload.get("conversation"))
        or _account_id_of_conversation(payload.get("current_conversation"))
        or _account_id_of_conversation(payload, cleaned=True)
    )
    return account_from(account_id, obj.get("name"))


def account_from(account_id: str | None, name: Any) -> Account | None:
    """The account of its id (found) and its ``name`` as decoded."""
    name = name if type(name) is str and name and not name.isspace() else text_of(name)
    if account_id is None and name is None:
        return None
    return Account(id=account_id, name=name)


def inbox(obj: Mapping[str, Any], conversation: Mapping[str, Any]) -> Inbox | None:
    """The inbox of a body (cleaned) and of its conversation (cleaned)."""
    found = obj.get("inbox")
    if type(found) is not dict or not found.keys() <= SMALL_KEYS:
        found = clean(found, SMALL_KEYS)
    return inbox_from(
        found.get("id"),
        found.get("name"),
        found.get("channel_type"),
        conversation.get("inbox_id"),
        conversation.get("channel"),
    )


def inbox_from(id_: Any, name: Any, channel_type: Any, inbox_id: Any, channel: Any) -> Inbox | None:
    """The inbox of a body's ``inbox`` values (``id_``, ``name``, ``channel_type``) and its
    conversation's ``inbox_id`` and ``channel``, as decoded."""
    inbox_id = (str(id_) if type(id_) is int else None if id_ is None else text_of(id_)) or (
        str(inbox_id) if type(inbox_id) is int else text_of(inbox_id)
    )
    name = (
        name
        if type(name) is str and name and not name.isspace()
        else None
        if name is None
        else text_of(name)
    )
    channel = (None if channel_type is None else text_of(channel_type)) or (
        channel if type(channel) is str and channel and not channel.isspace() else text_of(channel)
    )
    if inbox_id is None and name is None and channel is None:
        return None
    return Inbox(id=inbox_id, name=name, channel=channel)


def dict_or_none(value: Any) -> dict[str, Any] | None:
    """A non-empty JSON object as a dict (a decoded one as it is: the event may share it
    with the body, which nothing changes after decoding), else None."""
    if type(value) is dict:
        return value or None
    if not value or not isinstance(value, Mapping):
        return None
    return dict(value)


def actor(value: Any, default_type: str = "contact") -> Actor | None:
    """A Chatwoot sender/user/assignee object as an actor.

    A contact at the top level of a message has no ``type`` key; users say ``user``,
    bots ``agent_bot`` or ``captain_assistant``.
    """
    if type(value) is not dict or not value:
        return None
    obj = value if value.keys() <= PERSON_SEEN else clean(value, PERSON_SEEN)
    return actor_from(
        obj.get("type"),
        obj.get("id"),
        obj.get("name"),
        obj.get("available_name"),
        obj.get("email"),
        obj.get("phone_number"),
        default_type,
    )


def actor_from(
    kind: Any,
    id_: Any,
    name: Any,
    available_name: Any,
    email: Any,
    phone_number: Any,
    default_type: str = "contact",
) -> Actor:
    """The actor of a person's values, as decoded (the dict reader's and the typed
    reader's one home for what they mean)."""
    kind = None if kind is None else text_of(kind)
    return Actor(
        type=_ACTOR_TYPES.get(kind.lower() if kind else default_type, "system"),
        id=str(id_) if type(id_) is int else text_of(id_),
        name=(name if type(name) is str and name and not name.isspace() else text_of(name))
        or text_of(available_name),
        email=None if email is None else text_of(email),
        phone=phone(phone_number),
    )


def contact(value: Any) -> Contact | None:
    if type(value) is not dict or not value:
        return None
    return contact_of(value if value.keys() <= PERSON_SEEN else clean(value, PERSON_SEEN))


def contact_and_extension(value: Any) -> tuple[Contact | None, dict[str, Any] | None]:
    """``(contact(value), its pass-through)``, the object's keys looked at once."""
    if type(value) is not dict or not value:
        return None, None
    view, found = read(value, CONTACT_KEYS)
    return contact_of(view), found


def contact_of(obj: Mapping[str, Any]) -> Contact:
    """The contact of a cleaned, non-empty object."""
    return contact_from(
        obj.get("id"),
        obj.get("name"),
        obj.get("phone_number"),
        obj.get("email"),
        obj.get("identifier"),
        obj.get("avatar"),
        obj.get("thumbnail"),
        obj.get("avatar_url"),
        obj.get("custom_attributes"),
    )


def contact_from(
    id_: Any,
    name: Any,
    phone_number: Any,
    email: Any,
    identifier: Any,
    avatar: Any,
    thumbnail: Any,
    avatar_url: Any,
    custom: Any,
) -> Contact:
    """The contact of a person's values, as decoded (the avatar: the first of ``avatar``,
    ``thumbnail`` and ``avatar_url`` that is text)."""
    return Contact(
        id=str(id_) if type(id_) is int else text_of(id_),
        name=name if type(name) is str and name and not name.isspace() else text_of(name),
        phone=phone(phone_number),
        email=None if email is None else text_of(email),
        identifier=None if identifier is None else text_of(identifier),
        avatar_url=avatar
        if type(avatar) is str and avatar and not avatar.isspace()
        else _first_text(avatar, thumbnail, avatar_url),
        custom_attributes=dict_or_none(custom) if custom else None,
    )


def changes(payload: Mapping[str, Any]) -> dict[str, Change] | None:
    """``changed_attributes`` of a cleaned body: a list of one-key objects (or one object)
    of attr → values."""
    return changes_of(payload.get("changed_attributes"))


def changes_of(raw: Any) -> dict[str, Change] | None:
    """:func:`changes` of a body's ``changed_attributes`` as decoded."""
    items = raw if type(raw) is list else [raw] if type(raw) is dict else []
    found: dict[str, Change] = {}
    for item in items:
        if type(item) is not dict:
            continue
        for name, values in item.items():
            if type(values) is dict:
                # exact keys first (coerce.get's own first step, without its call)
                previous = values.get("previous_value", _MISSING)
                current = values.get("current_value", _MISSING)
                found[name] = Change(  # a decoded object's keys are texts
                    previous=get(values, "previous_value") if previous is _MISSING else previous,
                    current=get(values, "current_value") if current is _MISSING else current,
                )
    return found or None


def change_time(found: dict[str, Change] | None) -> str | None:
    """When a change happened: ``changed_attributes.updated_at.current_value``, if sent."""
    if not found or "updated_at" not in found:
        return None
    return time_of(found["updated_at"].current)
