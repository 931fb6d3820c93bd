"""A Z-API ``ReceivedCallback``'s content → the typed parts of a canonical message.

The content kind is whichever content key is present; each has its own reader here. The
keys follow Z-API's on-message-received documentation (tests/fixtures/README.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from relay.events import (
    Button,
    Card,
    Location,
    Media,
    Option,
    Order,
    OrderItem,
    Poll,
    PollVote,
    Product,
    Reaction,
    Referral,
    Reply,
    SharedContact,
    Template,
)
from relay.providers.money import from_major
from relay.values import (
    as_bool,
    as_e164,
    as_float,
    as_int,
    as_str,
    as_time,
    get,
    get_list,
    get_obj,
    get_str,
)


@dataclass(slots=True)
class Content:
    """What one content key says; the message builder copies it into :class:`Message`."""

    kind: str
    text: str | None = None
    media: list[Media] = field(default_factory=list)
    location: Location | None = None
    shared_contacts: list[SharedContact] = field(default_factory=list)
    reaction: Reaction | None = None
    reply: Reply | None = None
    options: list[Option] = field(default_factory=list)
    cards: list[Card] = field(default_factory=list)
    template: Template | None = None
    poll: Poll | None = None
    poll_vote: PollVote | None = None
    product: Product | None = None
    order: Order | None = None
    view_once: bool | None = None
    in_reply_to: str | None = None
    known: frozenset[str] = frozenset()
    """The content object's keys read into typed parts (the rest go to extensions)."""


Reader = Callable[[Mapping[str, Any], Mapping[str, Any]], Content]

_MEDIA_URL_KEYS = {
    "image": "imageUrl",
    "audio": "audioUrl",
    "video": "videoUrl",
    "document": "documentUrl",
    "sticker": "stickerUrl",
}
_MEDIA_KEYS = frozenset(
    {
        "imageUrl",
        "audioUrl",
        "videoUrl",
        "documentUrl",
        "stickerUrl",
        "gifUrl",
        "ptvUrl",
        "url",
        "mimeType",
        "fileName",
        "title",
        "caption",
        "fileSize",
        "thumbnailUrl",
        "width",
        "height",
        "seconds",
        "ptt",
        "viewOnce",
    }
)


def media_item(kind: str, obj: Mapping[str, Any]) -> Media:
    url = get_str(obj, _MEDIA_URL_KEYS.get(kind, "url"), "gifUrl", "ptvUrl", "url")
    return Media(
        kind=kind,
        url=url,
        mime_type=get_str(obj, "mimeType"),
        file_name=get_str(obj, "fileName", "title"),
        caption=get_str(obj, "caption"),
        size=as_int(get(obj, "fileSize")),
        thumbnail_url=get_str(obj, "thumbnailUrl"),
        width=as_int(get(obj, "width")) or None,
        height=as_int(get(obj, "height")) or None,
        duration_seconds=as_int(get(obj, "seconds")) or None,
        voice=as_bool(get(obj, "ptt")) if kind == "audio" else None,
    )


def _media(kind: str) -> Reader:
    def read(obj: Mapping[str, Any], payload: Mapping[str, Any]) -> Content:
        item = media_item(kind, obj)
        return Content(
            kind=kind,
            text=item.caption if kind in ("image", "video", "document") else None,
            media=[item],
            view_once=as_bool(get(obj, "viewOnce")),
            known=_MEDIA_KEYS,
        )

    return read


def _text(obj: Mapping[str, Any], payload: Mapping[str, Any]) -> Content:
    return Content(kind="text", text=get_str(obj, "message"), known=frozenset({"message"}))


def location(obj: Mapping[str, Any]) -> Location:
    return Location(
        latitude=as_float(get(obj, "latitude")),
        longitude=as_float(get(obj, "longitude")),
        name=get_str(obj, "name"),
        address=get_str(obj, "address"),
        url=get_str(obj, "url"),
    )


def _location(obj: Mapping[str, Any], payload: Mapping[str, Any]) -> Content:
    return Content(
        kind="location",
        location=location(obj),
        known=frozenset({"latitude", "longitude", "name", "address", "url"}),
    )


# vCard TEL lines: "TEL;type=CELL;waid=5544999999999:+55 44 9999-9999"
_VCARD_TEL = re.compile(r"^TEL[^:\n]*:(.+)$", re.MULTILINE | re.IGNORECASE)
_VCARD_EMAIL = re.compile(r"^EMAIL[^:\n]*:(.+)$", re.MULTILINE | re.IGNORECASE)
_MAX_CARD_LINES = 64


def _phone(value: str) -> str:
    return as_e164(value) or value.strip()


def shared_contact(obj: Mapping[str, Any]) -> SharedContact:
    vcard = get_str(obj, "vCard", "vcard")
    phones = [_phone(p) for p in (as_str(item) for item in get_list(obj, "phones")) if p]
    emails: list[str] = []
    if vcard is not None:
        card = vcard[:16384]
        if not phones:
            phones = [_phone(p) for p in _VCARD_TEL.findall(card)[:_MAX_CARD_LINES]]
        emails = [e.strip() for e in _VCARD_EMAIL.findall(card)[:_MAX_CARD_LINES]]
    return SharedContact(
        name=get_str(obj, "displayName", "name"),
        phones=list(dict.fromkeys(phones)),
        emails=emails,
        vcard=vcard,
    )


def _contact(obj: Mapping[str, Any], payload: Mapping[str, Any]) -> Content:
    return Content(
        kind="contact",
        shared_contacts=[shared_contact(obj)],
        known=frozenset({"displayName", "name", "vCard", "vcard", "phones"}),
    )


def _contacts(value: Any, payload: Mapping[str, Any]) -> Content:
    # a multi-contact message: a list of contact objects
    items = value if isinstance(value, list) else get_list(value, "contacts")
    return Content(
        kind="contact",
        shared_contacts=[shared_contact(item) for item in items if isinstance(item, Mapping)],
        known=frozenset({"contacts"}),
    )


def _reaction(obj: Mapping[str, Any], payload: Mapping[str, Any]) -> Content:
    emoji = get_str(obj, "value")
    referenced = get_obj(obj, "referencedMessage")
    return Content(
        kind="reaction",
        reaction=Reaction(
            emoji=emoji,
            message_id=get_str(referenced, "messageId"),
            removed=emoji is None,
            reacted_at=as_time(get(obj, "time")),
        ),
        known=frozenset({"value", "time", "referencedMessage"}),
    )


def _buttons_response(obj: Mapping[str, Any], payload: Mapping[str, Any]) -> Content:
    return Content(
        kind="button_reply",
        text=get_str(obj, "message"),
        reply=Reply(
            id=get_str(obj, "buttonId"),
            title=get_str(obj, "message"),
            message_id=get_str(payload, "referenceMessageId"),
        ),
        known=frozenset({"buttonId", "message"}),
    )


def _list_response(obj: Mapping[str, Any], payload: Mapping[str, Any]) -> Content:
    return Content(
        kind="list_reply",
        text=get_str(obj, "message"),
        reply=Reply(
            id=get_str(obj, "selectedRowId"),
            title=get_str(obj, "title"),
            description=get_str(obj, "message"),
            message_id=get_str(payload, "referenceMessageId"),
        ),
        known=frozenset({"selectedRowId", "title", "message"}),
    )


def _buttons(items: list[Any]) -> list[Button]:
    """Z-API hydratedButtons: ``{urlButton|callButton|quickReplyButton|copyButton: {...}}``."""
    found = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        if url := get_obj(item, "urlButton"):
            found.append(
                Button(type="url", title=get_str(url, "displayText"), url=get_str(url, "url"))
            )
        elif call := get_obj(item, "callButton"):
            number = get(call, "phoneNumber")
            found.append(
                Button(
                    type="call",
                    title=get_str(call, "displayText"),
                    phone=as_e164(number) or as_str(number),
                )
            )
        elif quick := get_obj(item, "quickReplyButton"):
            found.append(
                Button(type="reply", id=get_str(quick, "id"), title=get_str(quick, "displayText"))
            )
        elif copy := get_obj(item, "copyButton") or get_obj(item, "copyCodeButton"):
            found.append(Button(type="copy", title=get_str(copy, "displayText", "code")))
        elif get(item, "buttonId") is not None:
            found.append(
                Button(
                    type="reply",
                    id=get_str(item, "buttonId"),
                    title=get_str(get_obj(item, "buttonText"), "displayText"),
                )
            )
    return found


def _header(obj: Mapping[str, Any]) -> tuple[Media | None, Location | None]:
    for kind in ("image", "video", "document"):
        found = get_obj(obj, kind)
        if found:
            return media_item(kind, found), None
    place = get_obj(obj, "location")
    return None, location(place) if place else None


_TEMPLATE_KEYS = frozenset(
    {"header", "message", "footer", "title", "templateId", "hydratedButtons", "name", "language"}
)


def _template(obj: Mapping[str, Any], payload: Mapping[str, Any]) -> Content:
    header_obj = get_obj(obj, "header")
    header, place = _header(header_obj)
    text = get_str(obj, "message")
    return Content(
        kind="template",
        text=text,
        location=place,
        template=Template(
            id=get_str(obj, "templateId"),
            name=get_str(obj, "name"),
            language=get_str(obj, "language"),
            title=get_str(obj, "title"),
            text=text,
            header=header,
            header_text=get_str(header_obj, "text"),
            footer=get_str(obj, "footer"),
            buttons=_buttons(get_list(obj, "hydratedButtons")),
        ),
        known=_TEMPLATE_KEYS,
    )


def _buttons_message(obj: Mapping[str, Any], payload: Mapping[str, Any]) -> Content:
    media = [
        media_item(kind, {f"{kind}Url": url})
        for kind in ("image", "video")
        if (url := get_str(obj, f"{kind}Url"))
    ]
    options = [
        Option(id=button.id, title=button.title) for button in _buttons(get_list(obj, "buttons"))
    ]
    return Content(
        kind="buttons",
        text=get_str(obj, "message"),
        media=media,
        options=options,
        known=frozenset({"imageUrl", "videoUrl", "message", "buttons"}),
    )


def _carousel(obj: Mapping[str, Any], payload: Mapping[str, Any]) -> Content:
    cards = []
    for item in get_list(obj, "cards"):
        if not isinstance(item, Mapping):
            continue
        header, _ = _header(get_obj(item, "header"))
        cards.append(
            Card(
                title=get_str(item, "title"),
                text=get_str(item, "message"),
                footer=get_str(item, "footer"),
                media=header,
                buttons=_buttons(get_list(item, "hydratedButtons")),
            )
        )
    return Content(
        kind="carousel", text=get_str(obj, "text"), cards=cards, known=frozenset({"text", "cards"})
    )


def _names(items: list[Any]) -> list[str]:
    return [name for name in (get_str(item, "name") for item in items) if name]


def _poll(obj: Mapping[str, Any], payload: Mapping[str, Any]) -> Content:
    question = get_str(obj, "question")
    return Content(
        kind="poll",
        text=question,
        poll=Poll(
            question=question,
            options=_names(get_list(obj, "options")),
            max_selections=as_int(get(obj, "pollMaxOptions")),
        ),
        known=frozenset({"question", "options", "pollMaxOptions"}),
    )


def _poll_vote(obj: Mapping[str, Any], payload: Mapping[str, Any]) -> Content:
    poll_id = get_str(obj, "pollMessageId")
    return Content(
        kind="poll_vote",
        poll_vote=PollVote(poll_message_id=poll_id, options=_names(get_list(obj, "options"))),
        in_reply_to=poll_id,
        known=frozenset({"pollMessageId", "options"}),
    )


def _party(value: Any) -> str | None:
    text = as_str(value)
    return (as_e164(text) or text) if text else None


def _product(obj: Mapping[str, Any], payload: Mapping[str, Any]) -> Content:
    currency = get(obj, "currencyCode")
    title = get_str(obj, "title")
    return Content(
        kind="product",
        text=title,
        product=Product(
            id=get_str(obj, "productId"),
            retailer_id=get_str(obj, "retailerId"),
            title=title,
            description=get_str(obj, "description"),
            price=from_major(get(obj, "price"), currency),
            image_url=get_str(obj, "productImage"),
            url=get_str(obj, "url"),
            seller=_party(get(obj, "businessOwnerJid")),
        ),
        known=frozenset(
            {
                "productId",
                "retailerId",
                "title",
                "description",
                "price",
                "currencyCode",
                "productImage",
                "url",
                "businessOwnerJid",
            }
        ),
    )


_ORDER_KEYS = frozenset(
    {
        "orderId",
        "orderRequestId",
        "referenceId",
        "orderTitle",
        "message",
        "orderStatus",
        "paymentStatus",
        "itemCount",
        "currency",
        "total",
        "subTotal",
        "discount",
        "shipping",
        "tax",
        "sellerJid",
        "thumbnailUrl",
        "products",
    }
)


def _order_kind(kind: str) -> Reader:
    def read(obj: Mapping[str, Any], payload: Mapping[str, Any]) -> Content:
        currency = get(obj, "currency")
        items = [
            OrderItem(
                id=get_str(item, "productId"),
                retailer_id=get_str(item, "retailerId"),
                title=get_str(item, "name", "title"),
                quantity=as_int(get(item, "quantity")),
                price=from_major(
                    get(item, "price") if get(item, "price") is not None else get(item, "value"),
                    get(item, "currencyCode") or currency,
                ),
                custom=as_bool(get(item, "isCustomItem")),
            )
            for item in get_list(obj, "products")
            if isinstance(item, Mapping)
        ]
        title = get_str(obj, "orderTitle")
        return Content(
            kind=kind,
            text=get_str(obj, "message") or title,
            order=Order(
                id=get_str(obj, "orderId", "orderRequestId"),
                reference_id=get_str(obj, "referenceId"),
                title=title,
                text=get_str(obj, "message"),
                status=get_str(obj, "orderStatus"),
                payment_status=get_str(obj, "paymentStatus"),
                items=items,
                item_count=as_int(get(obj, "itemCount")),
                subtotal=from_major(get(obj, "subTotal"), currency),
                discount=from_major(get(obj, "discount"), currency),
                shipping=from_major(get(obj, "shipping"), currency),
                tax=from_major(get(obj, "tax"), currency),
                total=from_major(get(obj, "total"), currency),
                seller=_party(get(obj, "sellerJid")),
                thumbnail_url=get_str(obj, "thumbnailUrl"),
            ),
            known=_ORDER_KEYS,
        )

    return read


def _payment(kind: str) -> Reader:
    def read(obj: Mapping[str, Any], payload: Mapping[str, Any]) -> Content:
        info = get_obj(obj, "paymentInfo")
        source = obj if get(obj, "value") is not None else info
        currency = get(source, "currencyCode")
        return Content(
            kind=kind,
            order=Order(
                total=from_major(get(source, "value"), currency),
                status=get_str(info, "transactionStatus"),
                payment_status=get_str(info, "status"),
                seller=_party(get(info, "receiverPhone")),
            ),
            known=frozenset({"value", "currencyCode"}),
        )

    return read


def _opaque(kind: str) -> Reader:
    """Content relay names but does not type: the whole object goes to extensions."""

    def read(obj: Mapping[str, Any], payload: Mapping[str, Any]) -> Content:
        referenced = get_obj(obj, "referencedMessage")
        return Content(
            kind=kind,
            text=get_str(obj, "text", "message", "name"),
            in_reply_to=get_str(referenced, "messageId"),
        )

    return read


# Content keys of a received message, in the order they are looked for.
READERS: dict[str, Reader] = {
    "text": _text,
    "image": _media("image"),
    "audio": _media("audio"),
    "video": _media("video"),
    "document": _media("document"),
    "location": _location,
    "contact": _contact,
    "contacts": _contacts,
    "sticker": _media("sticker"),
    "reaction": _reaction,
    "buttonsResponseMessage": _buttons_response,
    "listResponseMessage": _list_response,
    "buttonsMessage": _buttons_message,
    "templateMessage": _template,
    "hydratedTemplate": _template,
    "carouselMessage": _carousel,
    "poll": _poll,
    "pollVote": _poll_vote,
    "product": _product,
    "order": _order_kind("order"),
    "reviewAndPay": _order_kind("order"),
    "reviewOrder": _order_kind("order_update"),
    "requestPayment": _payment("payment_request"),
    "sendPayment": _payment("payment"),
    "gif": _media("video"),
    "ptv": _media("video"),
    "pixKeyMessage": _opaque("pix"),
    "pinMessage": _opaque("pin"),
    "event": _opaque("event"),
    "eventResponse": _opaque("event_response"),
    "newsletterAdminInvite": _opaque("newsletter_invite"),
    "listMessage": _opaque("list"),
    "statusImage": _opaque("status_image"),
}
CONTENT_KEYS = frozenset(READERS)


def referral(payload: Mapping[str, Any]) -> Referral | None:
    """``externalAdReply``: the click-to-WhatsApp ad (or post) the contact came from."""
    ad = get_obj(payload, "externalAdReply")
    if not ad:
        return None
    return Referral(
        source_type=get_str(ad, "sourceType"),
        source_id=get_str(ad, "sourceId"),
        source_url=get_str(ad, "sourceUrl"),
        title=get_str(ad, "title"),
        body=get_str(ad, "body"),
        media_type=get_str(ad, "mediaType"),
        thumbnail_url=get_str(ad, "thumbnailUrl"),
        click_id=get_str(ad, "ctwaClid"),
    )


_CALLS = ("CALL_VOICE", "CALL_VIDEO", "CALL_MISSED_VOICE", "CALL_MISSED_VIDEO")


def content(payload: Mapping[str, Any]) -> tuple[Content, str | None]:
    """The message's content and the key it came from (None for content-less callbacks)."""
    for key, value in payload.items():
        name = key.strip() if isinstance(key, str) else key
        reader = READERS.get(name)
        if reader is None:
            continue
        if isinstance(value, Mapping):
            return reader(value, payload), key
        if name == "contacts" and isinstance(value, list):
            return reader({"contacts": value}, payload), key
    if as_bool(get(payload, "waitingMessage")):
        return Content(kind="waiting"), None
    notification = get_str(payload, "notification")
    if notification is not None:
        upper = notification.upper()
        if upper == "REVOKE":
            return Content(kind="revoked"), None
        if upper in _CALLS:
            return Content(kind="call"), None
        return Content(kind="notification"), None
    return Content(kind="unknown"), None
