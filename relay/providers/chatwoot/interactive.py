"""Chatwoot's bot and interactive messages: ``input_select`` options and the chosen one,
``cards`` with their buttons, ``form`` fields with the submitted values, ``input_csat``
surveys and their rating, all read from ``content_attributes``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relay.events import Button, Card, Csat, FormField, Media, MessageError, Option, Reply
from relay.providers.chatwoot.parts import text_of
from relay.providers.coerce import as_int, as_str, get, get_list, get_obj, get_str
from relay.providers.fast import clean


def _options(items: list[Any]) -> list[Option]:
    return [
        Option(id=get_str(item, "value", "id"), title=get_str(item, "title", "label"))
        for item in items
        if isinstance(item, Mapping)
    ]


def _cards(items: list[Any]) -> list[Card]:
    cards = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        buttons = [
            Button(
                type="url" if get_str(action, "type") == "link" else get_str(action, "type"),
                id=get_str(action, "payload"),
                title=get_str(action, "text"),
                url=get_str(action, "uri"),
            )
            for action in get_list(item, "actions")
            if isinstance(action, Mapping)
        ]
        media_url = get_str(item, "media_url")
        cards.append(
            Card(
                title=get_str(item, "title"),
                text=get_str(item, "description"),
                media=Media(kind="image", url=media_url) if media_url else None,
                buttons=buttons,
            )
        )
    return cards


def _form(items: list[Any], submitted: Any) -> list[FormField]:
    values: dict[str, Any] = {}
    for entry in submitted if isinstance(submitted, list) else []:
        name = get_str(entry, "name")
        if name is not None:
            values[name] = get(entry, "value")
    return [
        FormField(
            name=(name := get_str(item, "name")),
            type=get_str(item, "type"),
            label=get_str(item, "label", "placeholder"),
            value=values.get(name) if name is not None else None,
        )
        for item in items
        if isinstance(item, Mapping)
    ]


def said(attrs: Mapping[str, Any], content_type: str | None) -> dict[str, Any]:
    """What a message's ``content_attributes`` (``attrs``) say, as :class:`Message` fields:
    by its ``content_type`` (survey, select, cards, form), and the message it answers and
    its error whatever the type."""
    found: dict[str, Any] = {}
    view = clean(attrs, ATTRIBUTE_KEYS) if attrs else attrs  # what coerce.get finds, once
    if content_type in READERS:
        submitted = view.get("submitted_values")
        items = v if isinstance(v := view.get("items"), list) else []
        if content_type == "input_csat":
            response = get_obj(submitted, "csat_survey_response")
            found["csat"] = Csat(
                rating=as_int(get(response, "rating")),
                feedback=get_str(response, "feedback_message"),
            )
        elif content_type == "input_select":
            if isinstance(submitted, list) and submitted:
                chosen = submitted[0]
                found["reply"] = Reply(id=get_str(chosen, "value"), title=get_str(chosen, "title"))
            found["options"] = _options(items)
        elif content_type == "cards":
            found["cards"] = _cards(items)
        else:
            found["form"] = _form(items, submitted)
    if attrs:
        found["in_reply_to"] = text_of(view.get("in_reply_to"))
        found["error"] = _error(view.get("external_error"))
    return found


READERS = frozenset({"input_csat", "input_select", "cards", "form"})
ATTRIBUTE_KEYS = frozenset(
    {"deleted", "submitted_values", "items", "in_reply_to", "external_error", "external_echo"}
)
"""The ``content_attributes`` keys relay reads."""


def _error(value: Any) -> MessageError | None:
    """``external_error``: ``"<code>: <title>"`` from the WhatsApp channels, or free text."""
    text = as_str(value)
    if text is None:
        if isinstance(value, Mapping):
            return MessageError(
                code=get_str(value, "code"), detail=get_str(value, "message", "title", "detail")
            )
        return None
    code, sep, detail = text.partition(":")
    code = code.strip()
    if sep and code and len(code) <= 32 and " " not in code:
        return MessageError(code=code, detail=detail.strip() or None)
    return MessageError(detail=text)
