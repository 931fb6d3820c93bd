"""Deduplication: a provider that retries a delivery within the window makes one event.

Event ids are deterministic, so a retried delivery carries the ids of the first one. An id
published within the window is not published again (the raw body still is, and the sender
gets the same answer). Two copies arriving at once: the second waits for the first's
outcome and publishes only if the first failed, so a duplicate is never acknowledged in
place of an event that was not stored.

The memory is per process and bounded (oldest ids are forgotten first); across replicas
or restarts consumers still see the same id twice at most, and can drop it by id.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable


class Claim:
    """The ids one request must publish, and the ids it may skip as duplicates."""

    def __init__(self, owner: Deduplicator, mine: list[str], duplicates: set[str]) -> None:
        self._owner = owner
        self.mine = mine
        self.duplicates = duplicates

    def finish(self, published: bool) -> None:
        self._owner._settle(self.mine, published)


class Deduplicator:
    def __init__(
        self,
        window: float,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window
        self.max_entries = max_entries
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._pending: dict[str, asyncio.Future[bool]] = {}

    @property
    def enabled(self) -> bool:
        return self.window > 0

    def _purge(self, now: float) -> None:
        seen = self._seen
        while seen and (len(seen) > self.max_entries or next(iter(seen.values())) <= now):
            seen.popitem(last=False)

    async def claim(self, ids: Iterable[str]) -> Claim:
        """Split ids into those this request publishes and those already published.

        The same id twice in one body (a status callback listing a message twice) is one
        event. Whatever happens, the caller must ``finish`` the claim it gets; a claim cut
        short here settles its own ids as not published.
        """
        now = self._clock()
        self._purge(now)
        mine: list[str] = []
        duplicates: set[str] = set()
        others: list[tuple[str, asyncio.Future[bool]]] = []
        loop = asyncio.get_running_loop()
        for event_id in dict.fromkeys(ids):
            if event_id in self._seen:
                duplicates.add(event_id)
            elif (pending := self._pending.get(event_id)) is not None:
                others.append((event_id, pending))
            else:
                self._pending[event_id] = loop.create_future()
                mine.append(event_id)
        try:
            for event_id, pending in others:
                while True:
                    await asyncio.shield(pending)
                    if event_id in self._seen:  # published by the copy we waited for
                        duplicates.add(event_id)
                        break
                    waiting = self._pending.get(event_id)
                    if waiting is None:  # that copy failed: this one publishes it
                        self._pending[event_id] = loop.create_future()
                        mine.append(event_id)
                        break
                    pending = waiting  # another copy took it over meanwhile
        except BaseException:
            self._settle(mine, published=False)
            raise
        return Claim(self, mine, duplicates)

    def _settle(self, ids: list[str], published: bool) -> None:
        expiry = self._clock() + self.window
        for event_id in ids:
            future = self._pending.pop(event_id, None)
            if future is not None and not future.done():
                future.set_result(published)
            if published:
                self._seen[event_id] = expiry
                self._seen.move_to_end(event_id)
