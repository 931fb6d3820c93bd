"""The canonical event: msgspec Structs for its parts and the CloudEvents 1.0 envelope.

Every provider normalizer produces :class:`CloudEvent` values; everything downstream
(routing, the bus, subscribers) reads only these. Parts that do not apply to an
event type are absent from the JSON (``omit_defaults``).
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

import msgspec

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
ActorType = Literal["contact", "agent", "bot", "system"]
ConversationStatus = Literal["open", "pending", "resolved", "snoozed"]
Direction = Literal["incoming", "outgoing"]
MessageStatus = Literal["sent", "delivered", "read", "played", "failed"]


class Part(msgspec.Struct, kw_only=True, omit_defaults=True, frozen=True):
    """Base of every canonical part: keyword-only, absent when unset."""


class Account(Part, frozen=True, kw_only=True):
    id: str | None = None
    name: str | None = None


class Inbox(Part, frozen=True, kw_only=True):
    id: str | None = None
    name: str | None = None
    channel: str | None = None


class Actor(Part, frozen=True, kw_only=True):
    """Whoever did the thing: a contact, an agent, a bot or the system."""

    type: ActorType
    id: str | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None


class Contact(Part, frozen=True, kw_only=True):
    id: str | None = None
    name: str | None = None
    phone: str | None = None
    """E.164, only when the provider's value is a real phone number."""
    chat_id: str | None = None
    """The provider's chat address when it is not a phone (WhatsApp LID, group id)."""
    email: str | None = None
    identifier: str | None = None
    avatar_url: str | None = None
    custom_attributes: dict[str, Any] | None = None


class Money(Part, frozen=True, kw_only=True):
    """An amount as an integer in the currency's minor units (centavos for BRL)."""

    amount: int
    currency: str | None = None
    """ISO 4217 code, when the provider says."""


class Media(Part, frozen=True, kw_only=True):
    kind: str | None = None
    """image, audio, video, document, sticker, or the provider's word (1.1: per item)."""
    url: str | None = None
    mime_type: str | None = None
    file_name: str | None = None
    caption: str | None = None
    size: int | None = None
    thumbnail_url: str | None = None
    width: int | None = None
    height: int | None = None
    duration_seconds: int | None = None
    voice: bool | None = None
    """A voice note (push-to-talk), not an audio file."""
    transcript: str | None = None
    """The provider's transcription of an audio item."""


class Location(Part, frozen=True, kw_only=True):
    latitude: float | None = None
    longitude: float | None = None
    name: str | None = None
    address: str | None = None
    url: str | None = None


class SharedContact(Part, frozen=True, kw_only=True):
    name: str | None = None
    phones: list[str] = []
    """E.164 where the value is a phone number, as sent otherwise."""
    emails: list[str] = []
    vcard: str | None = None


class Reaction(Part, frozen=True, kw_only=True):
    emoji: str | None = None
    message_id: str | None = None
    """The message reacted to."""
    removed: bool = False
    """True when the reaction was taken back (an empty emoji)."""
    reacted_at: str | None = None


class Reply(Part, frozen=True, kw_only=True):
    """A choice picked from buttons, a list, a select or a quick-reply template button."""

    id: str | None = None
    title: str | None = None
    description: str | None = None
    message_id: str | None = None
    """The message whose options were answered, when the provider says."""


class Button(Part, frozen=True, kw_only=True):
    type: str | None = None
    """reply, url, call, copy, or the provider's word."""
    id: str | None = None
    title: str | None = None
    url: str | None = None
    phone: str | None = None


class Option(Part, frozen=True, kw_only=True):
    """One choice a message offers (list rows, select items, buttons)."""

    id: str | None = None
    title: str | None = None
    description: str | None = None


class Card(Part, frozen=True, kw_only=True):
    title: str | None = None
    text: str | None = None
    footer: str | None = None
    media: Media | None = None
    buttons: list[Button] = []


class FormField(Part, frozen=True, kw_only=True):
    name: str | None = None
    type: str | None = None
    label: str | None = None
    value: Any = None
    """What the contact submitted, when they did."""


class Template(Part, frozen=True, kw_only=True):
    """A WhatsApp template (or Chatwoot template message) with what it rendered to."""

    id: str | None = None
    name: str | None = None
    language: str | None = None
    category: str | None = None
    title: str | None = None
    text: str | None = None
    header: Media | None = None
    header_text: str | None = None
    footer: str | None = None
    buttons: list[Button] = []
    params: dict[str, Any] | None = None
    """The values filled in (Chatwoot ``template_params.processed_params``)."""


class Poll(Part, frozen=True, kw_only=True):
    question: str | None = None
    options: list[str] = []
    max_selections: int | None = None
    """How many options a voter may pick; None or 0 means any number."""


class PollVote(Part, frozen=True, kw_only=True):
    poll_message_id: str | None = None
    options: list[str] = []
    """The options chosen (empty: the vote was withdrawn)."""


class Product(Part, frozen=True, kw_only=True):
    id: str | None = None
    retailer_id: str | None = None
    title: str | None = None
    description: str | None = None
    price: Money | None = None
    image_url: str | None = None
    url: str | None = None
    seller: str | None = None
    """The catalog owner's phone (E.164) or id."""


class OrderItem(Part, frozen=True, kw_only=True):
    id: str | None = None
    retailer_id: str | None = None
    title: str | None = None
    quantity: int | None = None
    price: Money | None = None
    """Unit price."""
    custom: bool | None = None


class Order(Part, frozen=True, kw_only=True):
    """A cart sent from a catalog, or an order/payment request and its updates."""

    id: str | None = None
    reference_id: str | None = None
    title: str | None = None
    text: str | None = None
    status: str | None = None
    payment_status: str | None = None
    items: list[OrderItem] = []
    item_count: int | None = None
    subtotal: Money | None = None
    discount: Money | None = None
    shipping: Money | None = None
    tax: Money | None = None
    total: Money | None = None
    seller: str | None = None
    thumbnail_url: str | None = None


class Referral(Part, frozen=True, kw_only=True):
    """Where a conversation came from: a click-to-WhatsApp ad or a post."""

    source_type: str | None = None
    source_id: str | None = None
    source_url: str | None = None
    title: str | None = None
    body: str | None = None
    media_type: str | None = None
    thumbnail_url: str | None = None
    click_id: str | None = None
    """Meta's ``ctwa_clid`` for conversion tracking."""


class Csat(Part, frozen=True, kw_only=True):
    """A customer-satisfaction survey; ``rating`` and ``feedback`` once answered."""

    rating: int | None = None
    feedback: str | None = None


class MessageError(Part, frozen=True, kw_only=True):
    """Why a message failed, machine-readable (1.1; a plain string in 1.0)."""

    code: str | None = None
    detail: str | None = None


class Message(Part, frozen=True, kw_only=True):
    id: str | None = None
    direction: Direction | None = None
    kind: str
    """text, image, audio, video, document, location, contact, sticker, reaction,
    button_reply, list_reply, buttons, list, carousel, template, poll, poll_vote, product,
    order, payment, csat, select, cards, form, call, waiting, notification, revoked, status,
    or the provider's own word for content relay does not know."""
    text: str | None = None
    private: bool | None = None
    status: MessageStatus | None = None
    provider_status: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    """When an edit or deletion happened, where the provider says."""
    sender: Actor | None = None
    media: list[Media] = []
    location: Location | None = None
    shared_contact: SharedContact | None = None
    """The first shared contact (1.0); every one is in ``shared_contacts``."""
    shared_contacts: list[SharedContact] = []
    reaction: Reaction | None = None
    reply: Reply | None = None
    options: list[Option] = []
    cards: list[Card] = []
    form: list[FormField] = []
    template: Template | None = None
    poll: Poll | None = None
    poll_vote: PollVote | None = None
    product: Product | None = None
    order: Order | None = None
    referral: Referral | None = None
    csat: Csat | None = None
    view_once: bool | None = None
    edited: bool | None = None
    in_reply_to: str | None = None
    error: MessageError | None = None
    attributes: dict[str, Any] | None = None
    """Provider-specific extras (Chatwoot ``content_attributes``, Z-API flags)."""


class Category(Part, frozen=True, kw_only=True):
    id: str | None = None
    name: str | None = None
    color: str | None = None
    item_id: str | None = None
    item_name: str | None = None


class Attendance(Part, frozen=True, kw_only=True):
    """A PlugChat attendance: one customer service session on a WhatsApp chat."""

    number: str | None = None
    department: str | None = None
    operator: str | None = None
    finished_by: str | None = None
    operator_report: str | None = None
    rating_note: str | None = None
    categories: list[Category] = []
    requested_at: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    transcript: list[Message] = []


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


class CloudEvent(msgspec.Struct, kw_only=True, omit_defaults=True, frozen=True):
    """CloudEvents 1.0, structured JSON mode, with two extension attributes."""

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


_ID_NAMESPACE = uuid.UUID("6f1d5c2e-93a4-4b8e-9a53-7b0c1f2d4e60")


def event_id(source: str, type_: str, identity: str) -> str:
    """A deterministic event id: the same provider delivery always maps to the same id."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{source}\x1f{type_}\x1f{identity}"))


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(CloudEvent)
_data_decoder = msgspec.json.Decoder(EventData)

# Kafka protocol binding, binary content mode: attributes as ``ce_<name>`` headers.
_BINARY_ATTRIBUTES = (
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "dataschema",
    "partitionkey",
    "providerdelivery",
)


def to_binary(event: CloudEvent) -> tuple[bytes, tuple[tuple[str, bytes], ...]]:
    """The event as a binary-mode Kafka record: ``data`` as the value, the rest as headers."""
    headers = [("content-type", b"application/json")]
    for name in _BINARY_ATTRIBUTES:
        value = getattr(event, name)
        if value is not None:
            headers.append((f"ce_{name}", value.encode()))
    return _encoder.encode(event.data), tuple(headers)


def from_binary(value: bytes, headers: dict[str, bytes]) -> CloudEvent:
    """Rebuild an event from a binary-mode record; raises msgspec.DecodeError when it is not."""
    attributes: dict[str, Any] = {
        name: headers[f"ce_{name}"].decode()
        for name in _BINARY_ATTRIBUTES
        if f"ce_{name}" in headers
    }
    attributes["datacontenttype"] = "application/json"
    attributes["data"] = _data_decoder.decode(value)
    try:
        return msgspec.convert(attributes, CloudEvent)
    except msgspec.ValidationError as exc:
        raise msgspec.DecodeError(f"not a binary-mode CloudEvent: {exc}") from None


def is_binary(headers: dict[str, bytes]) -> bool:
    return "ce_specversion" in headers


def encode(event: CloudEvent) -> bytes:
    return _encoder.encode(event)


def decode(payload: bytes) -> CloudEvent:
    return _decoder.decode(payload)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the canonical event, generated from the Structs."""
    return msgspec.json.schema(CloudEvent)
