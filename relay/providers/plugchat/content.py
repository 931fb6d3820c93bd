"""A Z-API ``ReceivedCallback``'s content → the typed parts of a canonical message.

The content kind is whichever content key is present; :data:`READERS` maps each key to its
reader. The keys follow Z-API's on-message-received documentation (tests/fixtures/README.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from relay.events import Reaction, Referral, SharedContact
from relay.providers.coerce import (
    as_bool,
    as_e164,
    as_str,
    as_time,
    get,
    get_list,
    get_obj,
    get_str,
)
from relay.providers.plugchat import commerce, interactive
from relay.providers.plugchat.reading import MEDIA_KEYS, Content, Reader, location, media_item


def _media(kind: str) -> Reader:
    def read(obj: Mapping[str, Any], payload: Mapping[str, Any]) -> Content:
        item = media_item(kind, obj)
        return Content(
            kind=kind,
            text=item.caption if kind in ("image", "video", "document") else None,
            media=[item],
            view_once=as_bool(get(obj, "viewOnce")),
            known=MEDIA_KEYS,
        )

    return read


def _text(obj: Mapping[str, Any], payload: Mapping[str, Any]) -> Content:
    return Content(kind="text", text=get_str(obj, "message"), known=frozenset({"message"}))


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
    "buttonsResponseMessage": interactive.buttons_response,
    "listResponseMessage": interactive.list_response,
    "buttonsMessage": interactive.buttons_message,
    "templateMessage": interactive.template,
    "hydratedTemplate": interactive.template,
    "carouselMessage": interactive.carousel,
    "poll": interactive.poll,
    "pollVote": interactive.poll_vote,
    "product": commerce.product,
    "order": commerce.order_kind("order"),
    "reviewAndPay": commerce.order_kind("order"),
    "reviewOrder": commerce.order_kind("order_update"),
    "requestPayment": commerce.payment("payment_request"),
    "sendPayment": commerce.payment("payment"),
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
