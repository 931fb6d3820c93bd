"""What one Z-API content key says (:class:`Content`), and the readers every content
family shares: text and lists from an object, media items and locations.

Every object is read through :func:`relay.providers.fast.clean` (as Chatwoot's are): at
dict speed, with what :mod:`relay.providers.coerce`'s tolerant readers would find when a
key carries stray whitespace. A reader cleans the objects it reaches itself; the helpers
here take objects already cleaned (``view``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import compress
from typing import Any

from relay.events import (
    Card,
    Location,
    Media,
    Option,
    Order,
    Poll,
    PollVote,
    Product,
    Reaction,
    Reply,
    SharedContact,
    Template,
)
from relay.providers.coerce import as_bool, as_e164, as_float, as_int, as_str
from relay.providers.fast import time_of


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

    @property
    def rare(self) -> bool:
        """Holds a part most messages lack (the message builder sets those apart)."""
        return (
            bool(self.shared_contacts or self.options or self.cards)
            or self.reaction is not None
            or self.reply is not None
            or self.template is not None
            or self.poll is not None
            or self.poll_vote is not None
            or self.product is not None
            or self.order is not None
        )


Body = dict[str, Any]
"""A JSON object as decoded: its keys as sent."""
View = Mapping[str, Any]
"""A JSON object through :func:`relay.providers.fast.clean`: what readers ``.get`` from."""

Reader = Callable[[Any, Mapping[str, Any]], Content]
"""``read(content object as sent, whole body cleaned)``."""


def text(view: Mapping[str, Any], *keys: str) -> str | None:
    """The first of ``keys`` holding a non-blank scalar, as text (``coerce.get_str``)."""
    for key in keys:
        value = view.get(key)
        if type(value) is str:  # what nearly every key holds: as_str's answer, inline
            if value and not value.isspace():
                return value
        elif value is not None:
            found = as_str(value)
            if found is not None:
                return found
    return None


_e164_of_text = lru_cache(maxsize=4096)(as_e164)


def phone_of(value: Any) -> str | None:
    """:func:`relay.providers.coerce.as_e164`, short texts answered from a bounded cache:
    the channel's own number is in every body, a chat's recurs body after body."""
    return _e164_of_text(value) if type(value) is str and len(value) <= 64 else as_e164(value)


def named(payload: Body, names: frozenset[str]) -> list[tuple[str, str]]:
    """(key as sent, its name) of the keys of ``payload`` that strip to one of ``names``, in
    the body's order, at C speed (a 1 MiB body can hold 100k keys)."""
    stripped = list(map(str.strip, payload))
    present = names.intersection(stripped)
    if not present:
        return []
    return list(compress(zip(payload, stripped, strict=True), map(present.__contains__, stripped)))


def listed(view: Mapping[str, Any], key: str) -> list[Any]:
    """``view[key]`` when it is a list, else an empty one (``coerce.get_list``)."""
    value = view.get(key)
    return value if type(value) is list else []


_MEDIA_URL_KEYS = {
    "image": "imageUrl",
    "audio": "audioUrl",
    "video": "videoUrl",
    "document": "documentUrl",
    "sticker": "stickerUrl",
}
MEDIA_KEYS = frozenset(
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


def media_item(kind: str, view: Mapping[str, Any]) -> Media:
    get = view.get
    url = text(view, _MEDIA_URL_KEYS.get(kind, "url"), "gifUrl", "ptvUrl", "url")
    return Media(
        kind=kind,
        url=url,
        mime_type=text(view, "mimeType"),
        file_name=text(view, "fileName", "title"),
        caption=text(view, "caption"),
        size=as_int(get("fileSize")),
        thumbnail_url=text(view, "thumbnailUrl"),
        width=as_int(get("width")) or None,
        height=as_int(get("height")) or None,
        duration_seconds=as_int(get("seconds")) or None,
        voice=as_bool(get("ptt")) if kind == "audio" else None,
    )


LOCATION_KEYS = frozenset({"latitude", "longitude", "name", "address", "url"})


def location(view: Mapping[str, Any]) -> Location:
    return Location(
        latitude=as_float(view.get("latitude")),
        longitude=as_float(view.get("longitude")),
        name=text(view, "name"),
        address=text(view, "address"),
        url=text(view, "url"),
    )


_FIRST_MS = 946_684_800_000  # as_time's range (2000-01-01 .. 2200-01-01) in milliseconds
_LAST_MS = 7_258_118_400_000
_MILLIS = [f"{n:03d}" for n in range(1000)]


def moment(value: Any) -> str | None:
    """:func:`relay.providers.coerce.as_time` of a Z-API time: epoch milliseconds (what
    ``momment`` holds) through :func:`relay.providers.fast.time_of`'s per-minute cache of
    whole seconds, anything else through ``time_of`` itself."""
    if type(value) is int and _FIRST_MS <= value <= _LAST_MS:
        seconds, millis = divmod(value, 1000)
        return f"{(time_of(seconds) or '')[:20]}{_MILLIS[millis]}Z"
    return time_of(value)
