"""The parts of a canonical event's ``data``: who (actors, contacts) and what was said
(:class:`Message` with its typed content: media, locations, shared contacts, polls,
products, orders, templates, interactive replies, reactions, referrals, CSAT, errors).

Re-exported by :mod:`relay.events`; import them from there.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

ActorType = Literal["contact", "agent", "bot", "system"]
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


class Option(Part, frozen=True, kw_only=True):
    """One choice a message offers (list rows, select items, buttons)."""

    id: str | None = None
    title: str | None = None
    description: str | None = None


class Reply(Option, frozen=True, kw_only=True):
    """A choice picked from buttons, a list, a select or a quick-reply template button."""

    message_id: str | None = None
    """The message whose options were answered, when the provider says."""


class Button(Part, frozen=True, kw_only=True):
    type: str | None = None
    """reply, url, call, copy, or the provider's word."""
    id: str | None = None
    title: str | None = None
    url: str | None = None
    phone: str | None = None


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
