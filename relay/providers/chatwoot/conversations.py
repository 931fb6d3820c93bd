"""Chatwoot conversations → the canonical :class:`Conversation` and the conversation's
pass-through (its ``contact_inbox`` without the widget's credential)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relay.events import Conversation, ConversationStatus
from relay.providers.chatwoot.parts import (
    CONVERSATION_SEEN,
    META_KEYS,
    actor,
    dict_or_none,
    text_of,
)
from relay.providers.coerce import as_str, get_str
from relay.providers.fast import clean, time_of

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


def conversation_rest(
    view: Mapping[str, Any], found: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The conversation's extension: ``found``, its pass-through (:func:`read`), with its
    ``contact_inbox`` (of ``view``, the object cleaned) added."""
    return with_contact_inbox(found, view.get("contact_inbox"))


def with_contact_inbox(found: dict[str, Any] | None, contact_inbox: Any) -> dict[str, Any] | None:
    """A conversation's pass-through ``found`` with its ``contact_inbox`` as decoded added."""
    if type(contact_inbox) is dict:
        # the raw contact_inbox row carries the widget's pubsub_token: a credential
        kept = dict(contact_inbox)
        kept.pop("pubsub_token", None)
        if None in kept.values():
            kept = {k: v for k, v in kept.items() if v is not None}
        if kept:
            if found is None:
                return {"contact_inbox": kept}
            found["contact_inbox"] = kept  # a fresh dict, of keys other than this one
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


def conversation(value: Any) -> Conversation | None:
    if type(value) is not dict or not value:
        return None
    return conversation_of(
        value if value.keys() <= CONVERSATION_SEEN else clean(value, CONVERSATION_SEEN)
    )


def conversation_of(obj: Mapping[str, Any], meta: Mapping[str, Any] | None = None) -> Conversation:
    """The conversation of a cleaned, non-empty object (``meta``: its ``meta``, cleaned, when
    the caller has it)."""
    if meta is None:
        meta = obj.get("meta")
        if type(meta) is not dict or not meta.keys() <= META_KEYS:
            meta = clean(meta, META_KEYS)
    updated = obj.get("updated_at")
    if updated is None:
        updated = obj.get("last_activity_at")
        if updated is None:
            updated = obj.get("timestamp")
    return conversation_from(
        meta.get("team"),
        meta.get("assignee"),
        obj.get("id"),
        obj.get("display_id"),
        obj.get("status"),
        obj.get("inbox_id"),
        obj.get("channel"),
        obj.get("labels"),
        obj.get("priority"),
        obj.get("created_at"),
        updated,
        obj.get("snoozed_until"),
        obj.get("custom_attributes"),
        obj.get("additional_attributes"),
    )


def conversation_from(
    team: Any,
    assignee: Any,
    id_: Any,
    display_id: Any,
    status_raw: Any,
    inbox_id: Any,
    channel: Any,
    labels: Any,
    priority: Any,
    created_at: Any,
    updated: Any,
    snoozed_until: Any,
    custom: Any,
    additional: Any,
) -> Conversation:
    """The canonical conversation of a Chatwoot conversation's values, as decoded
    (``team`` and ``assignee``: its meta's; ``updated``: its ``updated_at``, else
    ``last_activity_at``, else ``timestamp``): the dict reader's and the typed reader's one
    home for what they mean."""
    return Conversation(
        id=(None if display_id is None else text_of(display_id))
        or (str(id_) if type(id_) is int else text_of(id_)),
        status=_CONVERSATION_STATUSES.get(status_raw.lower())
        if type(status_raw) is str
        else _conversation_status(status_raw),
        provider_status=status_raw
        if type(status_raw) is str and status_raw and not status_raw.isspace()
        else as_str(status_raw),
        inbox_id=str(inbox_id) if type(inbox_id) is int else text_of(inbox_id),
        channel=channel
        if type(channel) is str and channel and not channel.isspace()
        else text_of(channel),
        assignee=actor(assignee, default_type="user") if assignee else None,
        team=None
        if team is None
        else get_str(team, "name")
        if type(team) is dict
        else as_str(team),
        labels=_labels(labels) if labels else None,
        priority=None if priority is None else text_of(priority),
        created_at=time_of(created_at),
        updated_at=time_of(updated),
        snoozed_until=None if snoozed_until is None else time_of(snoozed_until),
        custom_attributes=dict_or_none(custom) if custom else None,
        additional_attributes=dict_or_none(additional) if additional else None,
    )
