"""The live settings: everything a reload changes, in one frozen value held in one place.

:class:`Live` is built whole from one :class:`~relay.config.Config`; :class:`Current` holds
the one in force. The ingress, the pipeline and the connection guard read through the same
``Current``, and a reload assigns ``Current.live`` once, so a reader sees the old settings
or the new ones, never a mix. A request reads ``live`` once and keeps that snapshot to its
end: the ingress hands it to the pipeline, the pipeline to the deduplicator.

``ingress`` is the ingress's own part (``relay.ingress.state.IngressSettings``: sources
with their credentials and limiters, body limits, tokens); it is a type parameter so that
the layers below ingress can hold a ``Current`` without importing it.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

from relay.config import Config
from relay.routing import Router

S = TypeVar("S")


class Live(msgspec.Struct, Generic[S], frozen=True):
    router: Router
    max_events: int
    """``limits.max_events_per_body``: more from one body is a dead letter."""
    header_timeout: float
    """``limits.header_timeout``, read by the connection guard."""
    dedupe_window: float
    """``dedupe.window``; 0 turns deduplication off."""
    dedupe_max_entries: int
    ingress: S

    @classmethod
    def build(cls, config: Config, ingress: S) -> Live[S]:
        return cls(
            router=Router(config.routes, config.topics.events),
            max_events=config.limits.max_events_per_body,
            header_timeout=config.limits.header_timeout,
            dedupe_window=config.dedupe.window,
            dedupe_max_entries=config.dedupe.max_entries,
            ingress=ingress,
        )


class Current(Generic[S]):
    """The one place the live settings are held; a reload assigns :attr:`live` once."""

    __slots__ = ("live",)

    def __init__(self, live: Live[S]) -> None:
        self.live = live
