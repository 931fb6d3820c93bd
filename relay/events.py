"""The canonical event: msgspec Structs for its parts and the CloudEvents 1.0 envelope.

Every provider normalizer produces :class:`CloudEvent` values; everything downstream
(routing, the bus, subscribers) reads only these. Parts that do not apply to an
event type are absent from the JSON (``omit_defaults``).
"""

from __future__ import annotations

import hashlib
import operator
import uuid
from typing import Annotated, Any, Literal

import msgspec

from relay.parts import (
    Account,
    Actor,
    ActorType,
    Attendance,
    Button,
    Card,
    Category,
    Contact,
    Csat,
    Direction,
    FormField,
    Inbox,
    Location,
    Media,
    Message,
    MessageError,
    MessageStatus,
    Money,
    Option,
    Order,
    OrderItem,
    Part,
    Poll,
    PollVote,
    Product,
    Reaction,
    Referral,
    Reply,
    SharedContact,
    Template,
)

SCHEMA_VERSION = "1.1"
DATASCHEMA = f"urn:relay:schema:{SCHEMA_VERSION}"

EventType = Literal[
    "chat.conversation.created",
    "chat.conversation.updated",
    "chat.conversation.status_changed",
    "chat.message.created",
    "chat.message.updated",
    "chat.message.deleted",
    "chat.message.status_changed",
    "chat.message.failed",
    "chat.channel.disconnected",
    "chat.widget.opened",
    "chat.typing.started",
    "chat.typing.stopped",
    "chat.contact.created",
    "chat.contact.updated",
]
EVENT_TYPES: tuple[str, ...] = EventType.__args__  # type: ignore[attr-defined]

ProviderName = Literal["chatwoot", "plugchat"]
ConversationStatus = Literal["open", "pending", "resolved", "snoozed"]


class Conversation(Part, frozen=True, kw_only=True):
    id: str | None = None
    status: ConversationStatus | None = None
    provider_status: str | None = None
    inbox_id: str | None = None
    channel: str | None = None
    assignee: Actor | None = None
    team: str | None = None
    labels: list[str] | None = None
    priority: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    snoozed_until: str | None = None
    """When a snoozed conversation wakes up (1.1)."""
    custom_attributes: dict[str, Any] | None = None
    additional_attributes: dict[str, Any] | None = None
    attendance: Attendance | None = None


class Change(Part, frozen=True, kw_only=True):
    previous: Any = None
    current: Any = None


class Channel(Part, frozen=True, kw_only=True):
    """The provider-side channel (a WhatsApp instance) an event is about."""

    id: str | None = None
    phone: str | None = None
    connected: bool | None = None
    error: str | None = None


class Widget(Part, frozen=True, kw_only=True):
    referer: str | None = None
    language: str | None = None
    browser_language: str | None = None
    initiated_at: str | None = None
    browser: dict[str, Any] | None = None


class Typing(Part, frozen=True, kw_only=True):
    private: bool = False


class EventData(Part, frozen=True, kw_only=True):
    provider: ProviderName
    source: str
    provider_event: str
    """The provider's own name for what happened: a Chatwoot event or a PlugChat kind/type."""
    account: Account | None = None
    inbox: Inbox | None = None
    conversation: Conversation | None = None
    message: Message | None = None
    contact: Contact | None = None
    actor: Actor | None = None
    changes: dict[str, Change] | None = None
    channel: Channel | None = None
    widget: Widget | None = None
    typing: Typing | None = None
    extensions: dict[str, dict[str, Any]] | None = None
    """1.1: what the provider sent that the typed parts do not model, JSON as received,
    under the provider's name (``extensions.chatwoot.message``…); bounded in size."""


_TRACEPARENT = msgspec.Meta(
    description=(
        "CloudEvents distributed-tracing extension: the W3C traceparent of the request that "
        "made the event (version-traceid-spanid-flags). Present only when relay traces; "
        "delivery continues this trace and sends its own traceparent header."
    ),
    examples=["00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"],
)
_TRACESTATE = msgspec.Meta(
    description="W3C tracestate that came with traceparent, when the trace carries one.",
    examples=["vendor=opaque"],
)


class CloudEvent(msgspec.Struct, kw_only=True, omit_defaults=True, frozen=True):
    """CloudEvents 1.0, structured JSON mode, with relay's two extension attributes
    (``partitionkey``, ``providerdelivery``) and, when relay traces, the distributed-tracing
    extension's two (``traceparent``, ``tracestate``)."""

    specversion: Literal["1.0"]
    id: str
    source: str
    type: EventType
    subject: str | None = None
    time: str
    datacontenttype: Literal["application/json"]
    dataschema: str
    partitionkey: str
    providerdelivery: str | None = None
    """The provider's delivery id (``X-Chatwoot-Delivery``) when it sent one."""
    traceparent: Annotated[str, _TRACEPARENT] | None = None
    tracestate: Annotated[str, _TRACESTATE] | None = None
    data: EventData


class DataHead(msgspec.Struct, frozen=True):
    provider: str
    source: str


class EventHead(msgspec.Struct, frozen=True):
    """The envelope fields delivery needs to filter and route; decoding skips the rest."""

    id: str
    type: str
    partitionkey: str
    data: DataHead
    traceparent: str | None = None
    tracestate: str | None = None


_ID_NAMESPACE = uuid.UUID("6f1d5c2e-93a4-4b8e-9a53-7b0c1f2d4e60")


_ID_HASH = hashlib.sha1(_ID_NAMESPACE.bytes, usedforsecurity=False)


def event_id(source: str, type_: str, identity: str) -> str:
    """A deterministic event id: the same provider delivery always maps to the same id.

    ``str(uuid.uuid5(_ID_NAMESPACE, name))`` without its objects: the namespace's hash
    state is computed once and copied, and the 36-character text is cut straight from
    the digest's hex, the version and variant digits set by table (tests/unit/test_events.py
    compares with ``uuid.uuid5``).
    """
    digest = _ID_HASH.copy()
    digest.update(f"{source}\x1f{type_}\x1f{identity}".encode())
    first, second, third, variant, fourth, last = _PIECES(digest.digest().hex())
    # version 5 in the 13th hex digit; the variant's top bits 10 in the 17th
    return f"{first}-{second}-5{third}-{_VARIANT[variant]}{fourth}-{last}"


_PIECES = operator.itemgetter(
    slice(0, 8), slice(8, 12), slice(13, 16), 16, slice(17, 20), slice(20, 32)
)
"""The hex digest's pieces in one C call (six slices in Python cost as much as the hash)."""

_VARIANT = dict(zip("0123456789abcdef", "89ab" * 4, strict=True))
"""A hex digit → that digit with its top two bits set to 10 (RFC 4122's variant)."""


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the canonical event, generated from the Structs."""
    return msgspec.json.schema(CloudEvent)


__all__ = [
    "DATASCHEMA",
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "Account",
    "Actor",
    "ActorType",
    "Attendance",
    "Button",
    "Card",
    "Category",
    "Change",
    "Channel",
    "CloudEvent",
    "Contact",
    "Conversation",
    "ConversationStatus",
    "Csat",
    "DataHead",
    "Direction",
    "EventData",
    "EventHead",
    "EventType",
    "FormField",
    "Inbox",
    "Location",
    "Media",
    "Message",
    "MessageError",
    "MessageStatus",
    "Money",
    "Option",
    "Order",
    "OrderItem",
    "Part",
    "Poll",
    "PollVote",
    "Product",
    "ProviderName",
    "Reaction",
    "Referral",
    "Reply",
    "SharedContact",
    "Template",
    "Typing",
    "Widget",
    "event_id",
    "json_schema",
]
