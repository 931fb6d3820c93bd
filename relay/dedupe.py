"""Deduplication: a provider that retries a delivery within the window makes one event.

Event ids are deterministic, so a retried delivery carries the ids of the first one. An id
published within the window is not published again (the raw body still is, and the sender
gets the same answer). Two copies arriving at once: the second waits for the first's
outcome and publishes only if the first failed, so a duplicate is never acknowledged in
place of an event that was not stored.

An id is remembered for at least the window and at most twice it, in two generations of
plain sets (cheap to hold, dropped whole); at most ``max_entries`` ids are held, the oldest
generation going first. The window and the bound are the request's snapshot of the live
settings (:class:`relay.live.Live`, given to :meth:`Deduplicator.claim`), so a reload
changes them without a restart.
The memory is per process: across replicas or restarts consumers still see the same id
twice at most, and can drop it by id.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

from relay.live import Live


class Claim:
    """The ids one request must publish, and the ids it may skip as duplicates."""

    def __init__(
        self, owner: Deduplicator, live: Live[Any], mine: list[str], duplicates: set[str]
    ) -> None:
        self._owner = owner
        self._live = live
        self.mine = mine
        self.duplicates = duplicates

    def finish(self, published: bool) -> None:
        self._owner._settle(self.mine, published, self._live)


class Deduplicator:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._current: set[str] = set()
        self._previous: set[str] = set()
        self._started = clock()
        self._pending: dict[str, asyncio.Future[bool] | None] = {}
        """Ids being published now; the future is made only when a second copy waits."""

    def _rotate(self, now: float, live: Live[Any]) -> None:
        """Start a new generation when the current one is a window old or half full."""
        age = now - self._started
        if age >= live.dedupe_window or len(self._current) >= max(1, live.dedupe_max_entries // 2):
            self._previous = self._current if age < 2 * live.dedupe_window else set()
            self._current = set()
            self._started = now

    def _seen(self, event_id: str) -> bool:
        return event_id in self._current or event_id in self._previous

    async def claim(self, ids: Iterable[str], live: Live[Any]) -> Claim:
        """Split ids into those this request publishes and those already published.

        The same id twice in one body (a status callback listing a message twice) is one
        event. Whatever happens, the caller must ``finish`` the claim it gets; a claim cut
        short here settles its own ids as not published.
        """
        self._rotate(self._clock(), live)
        mine: list[str] = []
        duplicates: set[str] = set()
        others: list[str] = []
        pending = self._pending
        for event_id in dict.fromkeys(ids):
            if self._seen(event_id):
                duplicates.add(event_id)
            elif event_id in pending:
                others.append(event_id)
            else:
                pending[event_id] = None  # no future unless a copy comes to wait on it
                mine.append(event_id)
        try:
            for event_id in others:
                # a copy is publishing it (or was, while this claim waited on another id):
                # wait for its outcome, and for any copy that takes it over after a failure
                while event_id in pending:
                    future = pending[event_id]
                    if future is None:
                        future = pending[event_id] = asyncio.get_running_loop().create_future()
                    await asyncio.shield(future)
                if self._seen(event_id):  # published by a copy we waited for
                    duplicates.add(event_id)
                else:  # that copy failed: this one publishes it
                    pending[event_id] = None
                    mine.append(event_id)
        except BaseException:
            self._settle(mine, False, live)
            raise
        return Claim(self, live, mine, duplicates)

    def _settle(self, ids: list[str], published: bool, live: Live[Any]) -> None:
        if published:
            self._rotate(self._clock(), live)
        for event_id in ids:
            future = self._pending.pop(event_id, None)
            if future is not None and not future.done():
                future.set_result(published)
            if published:
                self._current.add(event_id)
