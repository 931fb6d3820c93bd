"""A Z-API ``ReceivedCallback``'s content → the typed parts of a canonical message.

The content kind is whichever content key is present; :data:`READERS` maps each key to its
reader. The keys follow Z-API's on-message-received documentation (tests/fixtures/README.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from relay.events import Reaction, Referral, SharedContact
from relay.providers.coerce import as_bool, as_e164, as_str
from relay.providers.plugchat import commerce, interactive
from relay.providers.plugchat.reading import (
    MEDIA_KEYS,
    Content,
    Reader,
    location,
    media_item,
    moment,
)
from relay.providers.reads import Reads


def _media(kind: str) -> Reader:
    def read(obj: Mapping[str, Any], payload: Mapping[str, Any], r: Reads) -> Content:
        item = media_item(kind, obj, r)
        return Content(
            kind=kind,
            text=item.caption if kind in ("image", "video", "document") else None,
            media=[item],
            view_once=as_bool(r.get(obj, "viewOnce")),
            known=MEDIA_KEYS,
        )

    return read


def _text(obj: Mapping[str, Any], payload: Mapping[str, Any], r: Reads) -> Content:
    return Content(kind="text", text=r.get_str(obj, "message"), known=_TEXT_KEYS)


_TEXT_KEYS = frozenset({"message"})


def _location(obj: Mapping[str, Any], payload: Mapping[str, Any], r: Reads) -> Content:
    return Content(
        kind="location",
        location=location(obj, r),
        known=frozenset({"latitude", "longitude", "name", "address", "url"}),
    )


# vCard TEL lines: "TEL;type=CELL;waid=5544999999999:+55 44 9999-9999"
_VCARD_TEL = re.compile(r"^TEL[^:\n]*:(.+)$", re.MULTILINE | re.IGNORECASE)
_VCARD_EMAIL = re.compile(r"^EMAIL[^:\n]*:(.+)$", re.MULTILINE | re.IGNORECASE)
_MAX_CARD_LINES = 64


def _phone(value: str) -> str:
    return as_e164(value) or value.strip()


def shared_contact(obj: Mapping[str, Any], r: Reads) -> SharedContact:
    vcard = r.get_str(obj, "vCard", "vcard")
    phones = [_phone(p) for p in (as_str(item) for item in r.get_list(obj, "phones")) if p]
    emails: list[str] = []
    if vcard is not None:
        card = vcard[:16384]
        if not phones:
            phones = [_phone(p) for p in _VCARD_TEL.findall(card)[:_MAX_CARD_LINES]]
        emails = [e.strip() for e in _VCARD_EMAIL.findall(card)[:_MAX_CARD_LINES]]
    return SharedContact(
        name=r.get_str(obj, "displayName", "name"),
        phones=list(dict.fromkeys(phones)),
        emails=emails,
        vcard=vcard,
    )


def _contact(obj: Mapping[str, Any], payload: Mapping[str, Any], r: Reads) -> Content:
    return Content(
        kind="contact",
        shared_contacts=[shared_contact(obj, r)],
        known=frozenset({"displayName", "name", "vCard", "vcard", "phones"}),
    )


def _contacts(value: Any, payload: Mapping[str, Any], r: Reads) -> Content:
    # a multi-contact message: a list of contact objects
    items = r.get_list(value, "contacts")
    return Content(
        kind="contact",
        shared_contacts=[shared_contact(item, r) for item in items if isinstance(item, dict)],
        known=frozenset({"contacts"}),
    )


def _reaction(obj: Mapping[str, Any], payload: Mapping[str, Any], r: Reads) -> Content:
    emoji = r.get_str(obj, "value")
    referenced = r.get_obj(obj, "referencedMessage")
    return Content(
        kind="reaction",
        reaction=Reaction(
            emoji=emoji,
            message_id=r.get_str(referenced, "messageId"),
            removed=emoji is None,
            reacted_at=moment(r.get(obj, "time")),
        ),
        known=frozenset({"value", "time", "referencedMessage"}),
    )


def _opaque(kind: str) -> Reader:
    """Content relay names but does not type: the whole object goes to extensions."""

    def read(obj: Mapping[str, Any], payload: Mapping[str, Any], r: Reads) -> Content:
        referenced = r.get_obj(obj, "referencedMessage")
        return Content(
            kind=kind,
            text=r.get_str(obj, "text", "message", "name"),
            in_reply_to=r.get_str(referenced, "messageId"),
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


def referral(payload: Mapping[str, Any], r: Reads) -> Referral | None:
    """``externalAdReply``: the click-to-WhatsApp ad (or post) the contact came from."""
    ad = r.get_obj(payload, "externalAdReply")
    if not ad:
        return None
    get_str = r.get_str
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


def _content_keys(payload: Mapping[str, Any], r: Reads) -> list[tuple[str, str]]:
    """(key as sent, its name) of the body's content keys, in the body's order."""
    if r.clean:
        present = payload.keys() & CONTENT_KEYS  # at C speed; usually one key
        if len(present) < 2:
            return [(key, key) for key in present]
        return [(key, key) for key in payload if key in present]
    found = []
    for key in payload:
        name = key.strip() if isinstance(key, str) else key
        if name in CONTENT_KEYS:
            found.append((key, name))
    return found


def content(payload: Mapping[str, Any], r: Reads) -> tuple[Content, str | None]:
    """The message's content and the key it came from (None for content-less callbacks)."""
    for key, name in _content_keys(payload, r):
        value = payload[key]
        if isinstance(value, dict):
            return READERS[name](r.checked(value), payload, r), key
        if name == "contacts" and isinstance(value, list):
            return READERS[name]({"contacts": value}, payload, r), key
    if as_bool(r.get(payload, "waitingMessage")):
        return Content(kind="waiting"), None
    notification = r.get_str(payload, "notification")
    if notification is not None:
        upper = notification.upper()
        if upper == "REVOKE":
            return Content(kind="revoked"), None
        if upper in _CALLS:
            return Content(kind="call"), None
        return Content(kind="notification"), None
    return Content(kind="unknown"), None
