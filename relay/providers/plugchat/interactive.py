"""Z-API interactive content: replies to buttons and lists, buttons, templates,
carousels and polls."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relay.events import Button, Card, Location, Media, Option, Poll, PollVote, Reply, Template
from relay.providers.coerce import as_e164, as_int, as_str
from relay.providers.fast import clean
from relay.providers.plugchat import reading
from relay.providers.plugchat.reading import Content, Reader, listed, text


def _reply(kind: str, id_key: str, title_key: str) -> Reader:
    """A reply to buttons or to a list: the chosen id and title. ``message`` is the
    text, and a list row's description (its title is a key of its own)."""
    known = frozenset({id_key, title_key, "message"})

    def read(obj: Any, payload: Mapping[str, Any]) -> Content:
        view = clean(obj, known)
        found = text(view, "message")
        return Content(
            kind=kind,
            text=found,
            reply=Reply(
                id=text(view, id_key),
                title=text(view, title_key),
                description=found if title_key != "message" else None,
                message_id=text(payload, "referenceMessageId"),
            ),
            known=known,
        )

    return read


buttons_response = _reply("button_reply", "buttonId", "message")
list_response = _reply("list_reply", "selectedRowId", "title")

_BUTTON_KEYS = frozenset(
    {"urlButton", "callButton", "quickReplyButton", "copyButton", "copyCodeButton"}
    | {"buttonId", "buttonText", "type"}
)
_BUTTON_PART_KEYS = frozenset({"displayText", "url", "phoneNumber", "id", "code"})


def _buttons(items: list[Any]) -> list[Button]:
    """Z-API hydratedButtons: ``{urlButton|callButton|quickReplyButton|copyButton: {...}}``."""
    found = []
    for item in items:
        if type(item) is not dict:
            continue
        view = clean(item, _BUTTON_KEYS)
        if url := clean(view.get("urlButton"), _BUTTON_PART_KEYS):
            found.append(Button(type="url", title=text(url, "displayText"), url=text(url, "url")))
        elif call := clean(view.get("callButton"), _BUTTON_PART_KEYS):
            number = call.get("phoneNumber")
            found.append(
                Button(
                    type="call",
                    title=text(call, "displayText"),
                    phone=as_e164(number) or as_str(number),
                )
            )
        elif quick := clean(view.get("quickReplyButton"), _BUTTON_PART_KEYS):
            found.append(
                Button(type="reply", id=text(quick, "id"), title=text(quick, "displayText"))
            )
        elif copy := clean(view.get("copyButton"), _BUTTON_PART_KEYS) or clean(
            view.get("copyCodeButton"), _BUTTON_PART_KEYS
        ):
            found.append(Button(type="copy", title=text(copy, "displayText", "code")))
        elif view.get("buttonId") is not None:
            found.append(
                Button(
                    type="reply",
                    id=text(view, "buttonId"),
                    title=text(clean(view.get("buttonText"), _BUTTON_PART_KEYS), "displayText"),
                )
            )
    return found


_HEADER_KEYS = frozenset({"image", "video", "document", "location", "text"})


def _header(view: Mapping[str, Any]) -> tuple[Media | None, Location | None]:
    for kind in ("image", "video", "document"):
        found = clean(view.get(kind), reading.MEDIA_KEYS)
        if found:
            return reading.media_item(kind, found), None
    place = clean(view.get("location"), reading.LOCATION_KEYS)
    return None, reading.location(place) if place else None


_TEMPLATE_KEYS = frozenset(
    {"header", "message", "footer", "title", "templateId", "hydratedButtons", "name", "language"}
)


def template(obj: Any, payload: Mapping[str, Any]) -> Content:
    view = clean(obj, _TEMPLATE_KEYS)
    header_obj = clean(view.get("header"), _HEADER_KEYS)
    header, place = _header(header_obj)
    found = text(view, "message")
    return Content(
        kind="template",
        text=found,
        location=place,
        template=Template(
            id=text(view, "templateId"),
            name=text(view, "name"),
            language=text(view, "language"),
            title=text(view, "title"),
            text=found,
            header=header,
            header_text=text(header_obj, "text"),
            footer=text(view, "footer"),
            buttons=_buttons(listed(view, "hydratedButtons")),
        ),
        known=_TEMPLATE_KEYS,
    )


_BUTTONS_MESSAGE_KEYS = frozenset({"imageUrl", "videoUrl", "message", "buttons"})


def buttons_message(obj: Any, payload: Mapping[str, Any]) -> Content:
    view = clean(obj, _BUTTONS_MESSAGE_KEYS)
    media = [
        reading.media_item(kind, {f"{kind}Url": url})
        for kind in ("image", "video")
        if (url := text(view, f"{kind}Url"))
    ]
    options = [
        Option(id=button.id, title=button.title) for button in _buttons(listed(view, "buttons"))
    ]
    return Content(
        kind="buttons",
        text=text(view, "message"),
        media=media,
        options=options,
        known=_BUTTONS_MESSAGE_KEYS,
    )


_CARD_KEYS = frozenset({"title", "message", "footer", "header", "hydratedButtons"})


def carousel(obj: Any, payload: Mapping[str, Any]) -> Content:
    view = clean(obj, _CAROUSEL_KEYS)
    cards = []
    for item in listed(view, "cards"):
        if type(item) is not dict:
            continue
        card = clean(item, _CARD_KEYS)
        header, _ = _header(clean(card.get("header"), _HEADER_KEYS))
        cards.append(
            Card(
                title=text(card, "title"),
                text=text(card, "message"),
                footer=text(card, "footer"),
                media=header,
                buttons=_buttons(listed(card, "hydratedButtons")),
            )
        )
    return Content(kind="carousel", text=text(view, "text"), cards=cards, known=_CAROUSEL_KEYS)


_CAROUSEL_KEYS = frozenset({"text", "cards"})
_NAME_KEYS = frozenset({"name"})


def _names(items: list[Any]) -> list[str]:
    return [name for name in (text(clean(item, _NAME_KEYS), "name") for item in items) if name]


_POLL_KEYS = frozenset({"question", "options", "pollMaxOptions"})


def poll(obj: Any, payload: Mapping[str, Any]) -> Content:
    view = clean(obj, _POLL_KEYS)
    question = text(view, "question")
    return Content(
        kind="poll",
        text=question,
        poll=Poll(
            question=question,
            options=_names(listed(view, "options")),
            max_selections=as_int(view.get("pollMaxOptions")),
        ),
        known=_POLL_KEYS,
    )


_POLL_VOTE_KEYS = frozenset({"pollMessageId", "options"})


def poll_vote(obj: Any, payload: Mapping[str, Any]) -> Content:
    view = clean(obj, _POLL_VOTE_KEYS)
    poll_id = text(view, "pollMessageId")
    return Content(
        kind="poll_vote",
        poll_vote=PollVote(poll_message_id=poll_id, options=_names(listed(view, "options"))),
        in_reply_to=poll_id,
        known=_POLL_VOTE_KEYS,
    )
