"""Chatwoot objects → canonical parts: account, inbox, actors, contacts, conversations,
changes. Shapes follow Chatwoot's ``webhook_data``/``push_event_data`` builders; see
tests/fixtures/README.md for the facts relied on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relay.events import (
    Account,
    Actor,
    ActorType,
    Change,
    Contact,
    Conversation,
    ConversationStatus,
    Inbox,
)
from relay.providers.extensions import leftovers
from relay.values import as_e164, as_str, as_time, first, get, get_list, get_obj, get_str

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
_ACTOR_TYPES: dict[str, ActorType] = {
    "user": "agent",
    "contact": "contact",
    "agent_bot": "bot",
    "agentbot": "bot",
    "captain_assistant": "bot",
    "bot": "bot",
}

CONTACT_KEYS = frozenset(
    {
        "id",
        "name",
        "phone_number",
        "email",
        "identifier",
        "avatar",
        "thumbnail",
        "avatar_url",
        "custom_attributes",
        "type",
        "account",
        "event",
        "changed_attributes",
        "created_at",
        "updated_at",
    }
)
CONVERSATION_KEYS = frozenset(
    {
        "id",
        "display_id",
        "status",
        "inbox_id",
        "channel",
        "meta",
        "labels",
        "priority",
        "created_at",
        "updated_at",
        "last_activity_at",
        "timestamp",
        "custom_attributes",
        "additional_attributes",
        "messages",
        "snoozed_until",
        "account_id",
        "account",
        "inbox",
        "event",
        "changed_attributes",
        "contact_inbox",
    }
)


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


def dict_or_none(value: Any) -> dict[str, Any] | None:
    if not value or not (type(value) is dict or isinstance(value, Mapping)):
        return None
    return dict(value)


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


def _conversation_status(value: Any) -> ConversationStatus | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return _CONVERSATION_STATUS_CODES.get(value)
    text = as_str(value)
    return _CONVERSATION_STATUSES.get(text.lower()) if text else None


def _labels(value: Any) -> list[str] | None:
    if not value or not isinstance(value, list):
        return None
    labels = [label for label in (as_str(item) for item in value) if label]
    return labels or None


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
