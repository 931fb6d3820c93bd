"""Z-API interactive content: replies to buttons and lists, buttons, templates,
carousels and polls."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relay.events import Button, Card, Location, Media, Option, Poll, PollVote, Reply, Template
from relay.providers.coerce import as_e164, as_int, as_str, get, get_list, get_obj, get_str
from relay.providers.plugchat.reading import Content, location, media_item


def buttons_response(obj: Mapping[str, Any], payload: Mapping[str, Any]) -> Content:
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


def list_response(obj: Mapping[str, Any], payload: Mapping[str, Any]) -> Content:
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


def template(obj: Mapping[str, Any], payload: Mapping[str, Any]) -> Content:
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


def buttons_message(obj: Mapping[str, Any], payload: Mapping[str, Any]) -> Content:
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


def carousel(obj: Mapping[str, Any], payload: Mapping[str, Any]) -> Content:
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


def poll(obj: Mapping[str, Any], payload: Mapping[str, Any]) -> Content:
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


def poll_vote(obj: Mapping[str, Any], payload: Mapping[str, Any]) -> Content:
    poll_id = get_str(obj, "pollMessageId")
    return Content(
        kind="poll_vote",
        poll_vote=PollVote(poll_message_id=poll_id, options=_names(get_list(obj, "options"))),
        in_reply_to=poll_id,
        known=frozenset({"pollMessageId", "options"}),
    )
