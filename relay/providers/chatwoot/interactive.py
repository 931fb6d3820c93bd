"""Chatwoot's bot and interactive messages: ``input_select`` options and the chosen one,
``cards`` with their buttons, ``form`` fields with the submitted values, ``input_csat``
surveys and their rating, all read from ``content_attributes``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relay.events import Button, Card, Csat, FormField, Media, Option, Reply
from relay.providers.coerce import as_int, get, get_list, get_obj, get_str

_EMPTY: dict[str, Any] = {}


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


class Interactive:
    """The bot/interactive content of a message: its ``content_attributes`` (``attrs``)
    read by its ``content_type``."""

    __slots__ = ("cards", "csat", "form", "options", "reply")

    def __init__(self, attrs: Mapping[str, Any], content_type: str | None) -> None:
        self.csat: Csat | None = None
        self.reply: Reply | None = None
        self.options: list[Option] = []
        self.cards: list[Card] = []
        self.form: list[FormField] = []
        submitted = get(attrs, "submitted_values")
        if content_type == "input_csat":
            response = get_obj(submitted, "csat_survey_response")
            self.csat = Csat(
                rating=as_int(get(response, "rating")),
                feedback=get_str(response, "feedback_message"),
            )
        elif content_type == "input_select" and isinstance(submitted, list) and submitted:
            chosen = submitted[0]
            self.reply = Reply(id=get_str(chosen, "value"), title=get_str(chosen, "title"))
        if content_type == "input_select":
            self.options = _options(get_list(attrs, "items"))
        elif content_type == "cards":
            self.cards = _cards(get_list(attrs, "items"))
        elif content_type == "form":
            self.form = _form(get_list(attrs, "items"), submitted)


NOTHING = Interactive(_EMPTY, None)
"""A message without interactive content (shared: its lists are never changed)."""
