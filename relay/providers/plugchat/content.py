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
from relay.providers.fast import clean
from relay.providers.plugchat import commerce, interactive
from relay.providers.plugchat.reading import (
    LOCATION_KEYS,
    MEDIA_KEYS,
    Content,
    Reader,
    listed,
    location,
    media_item,
    moment,
    named,
    text,
)


def _media(kind: str) -> Reader:
    def read(obj: Any, payload: Mapping[str, Any]) -> Content:
        view = clean(obj, MEDIA_KEYS)
        item = media_item(kind, view)
        return Content(
            kind=kind,
            text=item.caption if kind in ("image", "video", "document") else None,
            media=[item],
            view_once=as_bool(view.get("viewOnce")),
            known=MEDIA_KEYS,
        )

    return read


def _text(obj: Any, payload: Mapping[str, Any]) -> Content:
    return Content(kind="text", text=text(clean(obj, _TEXT_KEYS), "message"), known=_TEXT_KEYS)


_TEXT_KEYS = frozenset({"message"})


def _location(obj: Any, payload: Mapping[str, Any]) -> Content:
    return Content(
        kind="location", location=location(clean(obj, LOCATION_KEYS)), known=LOCATION_KEYS
    )


# vCard TEL lines: "TEL;type=CELL;waid=5544999999999:+55 44 9999-9999"
_VCARD_TEL = re.compile(r"^TEL[^:\n]*:(.+)$", re.MULTILINE | re.IGNORECASE)
_VCARD_EMAIL = re.compile(r"^EMAIL[^:\n]*:(.+)$", re.MULTILINE | re.IGNORECASE)
_MAX_CARD_LINES = 64


def _phone(value: str) -> str:
    return as_e164(value) or value.strip()


_CONTACT_KEYS = frozenset({"displayName", "name", "vCard", "vcard", "phones"})


def shared_contact(obj: Any) -> SharedContact:
    view = clean(obj, _CONTACT_KEYS)
    vcard = text(view, "vCard", "vcard")
    phones = [_phone(p) for p in (as_str(item) for item in listed(view, "phones")) if p]
    emails: list[str] = []
    if vcard is not None:
        card = vcard[:16384]
        if not phones:
            phones = [_phone(p) for p in _VCARD_TEL.findall(card)[:_MAX_CARD_LINES]]
        emails = [e.strip() for e in _VCARD_EMAIL.findall(card)[:_MAX_CARD_LINES]]
    return SharedContact(
        name=text(view, "displayName", "name"),
        phones=list(dict.fromkeys(phones)),
        emails=emails,
        vcard=vcard,
    )


def _contact(obj: Any, payload: Mapping[str, Any]) -> Content:
    return Content(kind="contact", shared_contacts=[shared_contact(obj)], known=_CONTACT_KEYS)


def _contacts(items: Any, payload: Mapping[str, Any]) -> Content:
    # a multi-contact message: a list of contact objects
    return Content(
        kind="contact",
        shared_contacts=[shared_contact(item) for item in items if type(item) is dict],
        known=frozenset({"contacts"}),
    )


_REACTION_KEYS = frozenset({"value", "time", "referencedMessage"})
_REFERENCED_KEYS = frozenset({"messageId"})


def _reaction(obj: Any, payload: Mapping[str, Any]) -> Content:
    view = clean(obj, _REACTION_KEYS)
    emoji = text(view, "value")
    referenced = clean(view.get("referencedMessage"), _REFERENCED_KEYS)
    return Content(
        kind="reaction",
        reaction=Reaction(
            emoji=emoji,
            message_id=text(referenced, "messageId"),
            removed=emoji is None,
            reacted_at=moment(view.get("time")),
        ),
        known=_REACTION_KEYS,
    )


_OPAQUE_KEYS = frozenset({"text", "message", "name", "referencedMessage"})


def _opaque(kind: str) -> Reader:
    """Content relay names but does not type: the whole object goes to extensions."""

    def read(obj: Any, payload: Mapping[str, Any]) -> Content:
        view = clean(obj, _OPAQUE_KEYS)
        return Content(
            kind=kind,
            text=text(view, "text", "message", "name"),
            in_reply_to=text(clean(view.get("referencedMessage"), _REFERENCED_KEYS), "messageId"),
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


_AD_KEYS = frozenset(
    {
        "sourceType",
        "sourceId",
        "sourceUrl",
        "title",
        "body",
        "mediaType",
        "thumbnailUrl",
        "ctwaClid",
        "showAdAttribution",
        "renderLargerThumbnail",
        "containsAutoReply",
    }
)


def referral(payload: Mapping[str, Any]) -> Referral | None:
    """``externalAdReply``: the click-to-WhatsApp ad (or post) the contact came from."""
    ad = clean(payload.get("externalAdReply"), _AD_KEYS)
    if not ad:
        return None
    return Referral(
        source_type=text(ad, "sourceType"),
        source_id=text(ad, "sourceId"),
        source_url=text(ad, "sourceUrl"),
        title=text(ad, "title"),
        body=text(ad, "body"),
        media_type=text(ad, "mediaType"),
        thumbnail_url=text(ad, "thumbnailUrl"),
        click_id=text(ad, "ctwaClid"),
    )


_CALLS = ("CALL_VOICE", "CALL_VIDEO", "CALL_MISSED_VOICE", "CALL_MISSED_VIDEO")


def _content_keys(payload: dict[str, Any], padded: bool) -> list[tuple[str, str]]:
    """(key as sent, its name) of the body's content keys, in the body's order
    (``padded``: some keys may carry stray whitespace)."""
    if not padded:
        present = payload.keys() & CONTENT_KEYS  # at C speed; usually one key
        if len(present) < 2:
            return [(key, key) for key in present]
        return [(key, key) for key in payload if key in present]
    return named(payload, CONTENT_KEYS)


def content(payload: dict[str, Any], view: Mapping[str, Any]) -> tuple[Content, str | None]:
    """The message's content and the key it came from (None for content-less callbacks):
    ``payload`` as sent, ``view`` cleaned."""
    for key, name in _content_keys(payload, view is not payload):
        value = payload[key]
        if type(value) is dict:
            return READERS[name](value, view), key
        if name == "contacts" and type(value) is list:
            return READERS[name](value, view), key
    if as_bool(view.get("waitingMessage")):
        return Content(kind="waiting"), None
    notification = text(view, "notification")
    if notification is not None:
        upper = notification.upper()
        if upper == "REVOKE":
            return Content(kind="revoked"), None
        if upper in _CALLS:
            return Content(kind="call"), None
        return Content(kind="notification"), None
    return Content(kind="unknown"), None
