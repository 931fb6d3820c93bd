"""The bus in memory, both directions: for unit tests and the bench, never for ``relay serve``.

It keeps the embedded log's semantics: one offset sequence shared by every topic, one
stream, committed positions per consumer that outlive a subscription, ``start_from``
and bounded reads. Nothing is durable, so a process that stops loses everything.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from relay import units
from relay.bus.base import BusError, Item, PublishProbe, Record, Revoked, StartFrom, Stream

STREAM: Stream = ("", 0, 0)


class MemoryBus:
    """A :class:`~relay.bus.base.Bus` whose records :meth:`subscribe` reads back.

    ``failure``: while set, ``publish`` raises it and keeps nothing (a bus that is away).
    """

    name = "memory"
    mode: str | None = None

    def __init__(self) -> None:
        self.items: list[Item] = []
        self.failure: BusError | None = None
        self.publishes = 0
        """Calls to ``publish`` that kept their records: one per bus write."""
        self.positions: dict[str, int] = {}
        """Committed positions: the last offset each consumer finished."""
        self._running = False
        self._arrived = asyncio.Event()

    async def start(self) -> None:
        self._running = True

    async def close(self) -> None:
        self._running = False

    def ready(self) -> bool:
        return self._running

    async def publish(self, records: Sequence[Record], probe: PublishProbe | None = None) -> None:
        if not records:
            return
        if probe is not None:
            probe.sent_at = time.monotonic()  # no batch to wait for
        if not self._running:
            raise BusError("the memory bus is not running")
        if self.failure is not None:
            raise self.failure
        now = units.now_ms()
        offset = len(self.items)
        for record in records:
            offset += 1
            self.items.append(
                Item(STREAM, offset, record.topic, record.key, record.value, record.headers, now)
            )
        self.publishes += 1
        self._arrived.set()

    def records(self, topic: str | None = None) -> list[Item]:
        """What was published, oldest first (on one topic, or all)."""
        return [item for item in self.items if topic is None or item.topic == topic]

    def subscribe(
        self,
        consumer: str,
        topics: Sequence[str],
        start_from: StartFrom = "earliest",
        *,
        bounded: bool = False,
    ) -> MemorySubscription:
        """``consumer``'s read of ``topics``; ``bounded`` stops at the end seen at start."""
        return MemorySubscription(self, consumer, topics, start_from, bounded=bounded)

    async def _wait(self, within: float) -> None:
        self._arrived.clear()
        try:
            async with asyncio.timeout(within):
                await self._arrived.wait()
        except TimeoutError:
            pass


class MemorySubscription:
    """A :class:`~relay.bus.base.Subscription` of a :class:`MemoryBus`."""

    on_revoked: Revoked | None = None  # nothing moves between processes in memory

    def __init__(
        self,
        bus: MemoryBus,
        consumer: str,
        topics: Sequence[str],
        start_from: StartFrom,
        *,
        bounded: bool = False,
    ) -> None:
        self.bus = bus
        self.consumer = consumer
        self.topics = frozenset(topics)
        self.start_from = start_from
        self.bounded = bounded
        self.started = self.closed = False
        self._position = 0
        self._end = 0

    async def start(self) -> None:
        bus = self.bus
        latest = len(bus.items)
        stored = bus.positions.get(self.consumer)
        if stored is not None:
            self._position = stored
        else:
            self._position = 0 if self.start_from == "earliest" else latest
            if not self.bounded:
                bus.positions[self.consumer] = self._position
        self._end = latest
        self.started = True

    async def close(self) -> None:
        self.closed = True

    def _after(self, position: int, max_records: int) -> list[Item]:
        end = self._end if self.bounded else len(self.bus.items)
        found: list[Item] = []
        for item in self.bus.items[position:end]:  # offsets are 1-based list positions
            if item.topic in self.topics:
                found.append(item)
                if len(found) == max_records:
                    break
        return found

    async def fetch(self, max_records: int, wait: float) -> list[Item] | None:
        items = self._after(self._position, max_records)
        if not items and not self.bounded:
            await self.bus._wait(wait)
            items = self._after(self._position, max_records)
        if items:
            self._position = items[-1].offset
            return items
        if self.bounded:
            self._position = self._end
            return None
        return []

    async def commit(self, positions: dict[Stream, int]) -> None:
        next_offset = positions.get(STREAM)
        if next_offset is not None and not self.bounded:
            self.bus.positions[self.consumer] = next_offset - 1

    async def backlog(self) -> int:
        return sum(1 for item in self.bus.items[self._position :] if item.topic in self.topics)


class GivenItems:
    """A bounded subscription of items already read elsewhere (a redrive, a one-event replay):
    handed out in order, at most ``max_records`` a fetch, then exhausted; commits nothing."""

    on_revoked: Revoked | None = None

    def __init__(self, items: Sequence[Item]) -> None:
        self._items = list(items)
        self._next = 0

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def fetch(self, max_records: int, wait: float) -> list[Item] | None:
        if self._next >= len(self._items):
            return None
        batch = self._items[self._next : self._next + max_records]
        self._next += len(batch)
        return batch

    async def commit(self, positions: dict[Stream, int]) -> None:
        return None

    async def backlog(self) -> int:
        return len(self._items) - self._next
