"""The shapes of Chatwoot's message, conversation and contact bodies as msgspec Structs,
for the typed path (:mod:`relay.providers.chatwoot.typed`).

Each Struct's fields are the keys Chatwoot's builders write in that object, in their
order: the one list of them, which the dict reader's key tables are made from
(:mod:`relay.providers.chatwoot.parts`, :mod:`relay.providers.chatwoot.content`). A key
added here is known to both paths. ``forbid_unknown_fields``: any other key, or one with
stray whitespace, is a refusal and the body the dict path's. Values are ``Any`` (the builders
read them as tolerantly as the dict path does) but for the objects, which are Structs too.

``gc=False``: the garbage collector need not track them, as nothing they hold (decoded
JSON) can refer back to one, so they are never part of a cycle.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET


class Small(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """An account or inbox (``parts.SMALL_KEYS``)."""

    id: Any = None
    name: Any = None
    channel_type: Any = None


NO_SMALL = Small()


class Copy(msgspec.Struct, forbid_unknown_fields=False, gc=False):
    """A message's copy in ``conversation.messages[]``: only what the reader takes of it
    (any other key is skipped; a key it needs that is not sent as spelt is a refusal, since
    the dict path would look for it with stray whitespace)."""

    id: Any = UNSET
    status: Any = UNSET
    updated_at: Any = UNSET
    account_id: Any = UNSET


class Person(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A sender or contact (``parts.PERSON_SEEN``), in Chatwoot's order (its contact's
    ``push_event_data``, then a user's keys)."""

    id: Any  # required: an empty object is no one (the dict path's)
    additional_attributes: Any = None
    custom_attributes: Any = None
    email: Any = None
    identifier: Any = None
    name: Any = None
    phone_number: Any = None
    thumbnail: Any = None
    blocked: Any = None
    type: Any = None
    available_name: Any = None
    avatar_url: Any = None
    availability_status: Any = None
    avatar: Any = None
    last_activity_at: Any = None
    account: Small | None = None
    event: Any = None
    changed_attributes: Any = None
    created_at: Any = None
    updated_at: Any = None


class Meta(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A conversation's ``meta`` (``parts.META_KEYS``)."""

    sender: Person | None = None
    assignee: Any = None
    assignee_type: Any = None
    team: Any = None
    hmac_verified: Any = None
    channel: Any = None


NO_META = Meta()


class ConversationBody(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A message's ``conversation`` (``parts.CONVERSATION_SEEN``), in Chatwoot's order."""

    id: Any  # required: an empty object is the dict path's (the automation shape)
    additional_attributes: Any = None
    can_reply: Any = None
    channel: Any = None
    contact_inbox: Any = None
    inbox_id: Any = None
    messages: list[Copy] | None = None
    labels: Any = None
    meta: Meta | None = None
    status: Any = None
    custom_attributes: Any = None
    snoozed_until: Any = None
    unread_count: Any = None
    first_reply_created_at: Any = None
    priority: Any = None
    waiting_since: Any = None
    agent_last_seen_at: Any = None
    contact_last_seen_at: Any = None
    assignee_last_seen_at: Any = None
    last_activity_at: Any = None
    timestamp: Any = None
    created_at: Any = None
    updated_at: Any = None
    display_id: Any = None
    account_id: Any = None
    account: Small | None = None
    inbox: Small | None = None
    event: Any = None
    changed_attributes: Any = None


class MessageBody(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A message event's body (``content.MESSAGE_SEEN``), in Chatwoot's order."""

    event: str
    conversation: ConversationBody | None = None
    account: Small | None = None
    additional_attributes: Any = None
    content_attributes: Any = None
    content_type: Any = None
    content: Any = None
    created_at: Any = None
    id: Any = None
    inbox: Small | None = None
    message_type: Any = None
    private: Any = None
    sender: Person | None = None
    source_id: Any = None
    attachments: Any = None
    status: Any = None
    processed_message_content: Any = None
    updated_at: Any = None
    contact: Person | None = None
    account_id: Any = None
    inbox_id: Any = None
    conversation_id: Any = None
    sender_type: Any = None
    sender_id: Any = None


decode_message = msgspec.json.Decoder(MessageBody).decode
decode_conversation = msgspec.json.Decoder(ConversationBody).decode
"""A conversation event's body: the conversation itself."""
decode_contact = msgspec.json.Decoder(Person).decode
"""A contact event's body: the contact itself."""
