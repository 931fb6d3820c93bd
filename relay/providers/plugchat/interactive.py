"""Z-API interactive content: replies to buttons and lists, buttons, templates,
carousels and polls."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relay.events import Button, Card, Location, Media, Option, Poll, PollVote, Reply, Template
from relay.providers.coerce import as_e164, as_int, as_str
from relay.providers.plugchat.reading import Content, Reader, location, media_item
from relay.providers.reads import Reads


def _reply(kind: str, id_key: str, title_key: str) -> Reader:
    """A reply to buttons or to a list: the chosen id and title. ``message`` is the
    text, and a list row's description (its title is a key of its own)."""
    known = frozenset({id_key, title_key, "message"})

    def read(obj: Mapping[str, Any], payload: Mapping[str, Any], r: Reads) -> Content:
        text = r.get_str(obj, "message")
        return Content(
            kind=kind,
            text=text,
            reply=Reply(
                id=r.get_str(obj, id_key),
                title=r.get_str(obj, title_key),
                description=text if title_key != "message" else None,
                message_id=r.get_str(payload, "referenceMessageId"),
            ),
            known=known,
        )

    return read


buttons_response = _reply("button_reply", "buttonId", "message")
list_response = _reply("list_reply", "selectedRowId", "title")


def _buttons(items: list[Any], r: Reads) -> list[Button]:
    """Z-API hydratedButtons: ``{urlButton|callButton|quickReplyButton|copyButton: {...}}``."""
    get, get_str, get_obj = r.get, r.get_str, r.get_obj
    found = []
    for item in items:
        if not isinstance(item, dict):
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


def _header(obj: Mapping[str, Any], r: Reads) -> tuple[Media | None, Location | None]:
    for kind in ("image", "video", "document"):
        found = r.get_obj(obj, kind)
        if found:
            return media_item(kind, found, r), None
    place = r.get_obj(obj, "location")
    return None, location(place, r) if place else None


_TEMPLATE_KEYS = frozenset(
    {"header", "message", "footer", "title", "templateId", "hydratedButtons", "name", "language"}
)


def template(obj: Mapping[str, Any], payload: Mapping[str, Any], r: Reads) -> Content:
    get_str = r.get_str
    header_obj = r.get_obj(obj, "header")
    header, place = _header(header_obj, r)
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
            buttons=_buttons(r.get_list(obj, "hydratedButtons"), r),
        ),
        known=_TEMPLATE_KEYS,
    )


def buttons_message(obj: Mapping[str, Any], payload: Mapping[str, Any], r: Reads) -> Content:
    media = [
        media_item(kind, {f"{kind}Url": url}, r)
        for kind in ("image", "video")
        if (url := r.get_str(obj, f"{kind}Url"))
    ]
    options = [
        Option(id=button.id, title=button.title)
        for button in _buttons(r.get_list(obj, "buttons"), r)
    ]
    return Content(
        kind="buttons",
        text=r.get_str(obj, "message"),
        media=media,
        options=options,
        known=frozenset({"imageUrl", "videoUrl", "message", "buttons"}),
    )


def carousel(obj: Mapping[str, Any], payload: Mapping[str, Any], r: Reads) -> Content:
    get_str = r.get_str
    cards = []
    for item in r.get_list(obj, "cards"):
        if not isinstance(item, dict):
            continue
        header, _ = _header(r.get_obj(item, "header"), r)
        cards.append(
            Card(
                title=get_str(item, "title"),
                text=get_str(item, "message"),
                footer=get_str(item, "footer"),
                media=header,
                buttons=_buttons(r.get_list(item, "hydratedButtons"), r),
            )
        )
    return Content(kind="carousel", text=get_str(obj, "text"), cards=cards, known=_CAROUSEL_KEYS)


_CAROUSEL_KEYS = frozenset({"text", "cards"})


def _names(items: list[Any], r: Reads) -> list[str]:
    return [name for name in (r.get_str(item, "name") for item in items) if name]


def poll(obj: Mapping[str, Any], payload: Mapping[str, Any], r: Reads) -> Content:
    question = r.get_str(obj, "question")
    return Content(
        kind="poll",
        text=question,
        poll=Poll(
            question=question,
            options=_names(r.get_list(obj, "options"), r),
            max_selections=as_int(r.get(obj, "pollMaxOptions")),
        ),
        known=frozenset({"question", "options", "pollMaxOptions"}),
    )


def poll_vote(obj: Mapping[str, Any], payload: Mapping[str, Any], r: Reads) -> Content:
    poll_id = r.get_str(obj, "pollMessageId")
    return Content(
        kind="poll_vote",
        poll_vote=PollVote(poll_message_id=poll_id, options=_names(r.get_list(obj, "options"), r)),
        in_reply_to=poll_id,
        known=frozenset({"pollMessageId", "options"}),
    )


# Every key these readers look for (the fast path's key check takes them as known).
KEYS = (
    _TEMPLATE_KEYS
    | _CAROUSEL_KEYS
    | {
        "buttonId",
        "selectedRowId",
        "urlButton",
        "callButton",
        "quickReplyButton",
        "copyButton",
        "copyCodeButton",
        "displayText",
        "url",
        "phoneNumber",
        "id",
        "code",
        "buttonText",
        "image",
        "video",
        "document",
        "location",
        "imageUrl",
        "videoUrl",
        "buttons",
        "question",
        "options",
        "pollMaxOptions",
        "pollMessageId",
    }
)
