"""Feeding the index from the bus (reading one record back by its place is relay.index.reader).

- Embedded log: the log's records table, read in offset order across the topics the index
  wants (so an event's raw body is the raw record just before it).
- Kafka: a consumer outside any group, assigned every partition of those topics, resuming
  at the positions the index stored (the beginning of what the broker keeps otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import structlog
from aiokafka import TopicPartition

from relay.bus import Item
from relay.bus.embedded import LOG_FILE, read_only, select
from relay.bus.kafka.consumer import kafka_item, outside_group
from relay.config import Config, Kafka
from relay.index.store import Index

log = structlog.get_logger("relay.index")

BATCH = 5000
IDLE_SECONDS = 0.2
TRIM_SECONDS = 60.0


def index_topics(config: Config) -> list[str]:
    """Every topic the index reads: event topics (default, routed, subscribed) and relay's own."""
    topics = {config.topics.events, *(route.topic for route in config.routes)}
    for subscriber in config.subscribers:
        topics.update(subscriber.topic_list(config.topics.events))
    topics.update((config.topics.raw, config.topics.deadletter, config.topics.attempts))
    return sorted(topics)


class Feed(Protocol):
    adjacent_raw: bool

    async def start(self, positions: dict[tuple[str, int], int]) -> None: ...

    async def fetch(self) -> list[Item]: ...

    async def close(self) -> None: ...


class EmbeddedFeed:
    adjacent_raw = True

    def __init__(self, data_dir: Path, topics: Sequence[str]) -> None:
        self.path = Path(data_dir) / LOG_FILE
        self.topics = list(topics)
        self._position = 0
        self._conn: sqlite3.Connection | None = None
        self._reading: asyncio.Future[list[Item]] | None = None

    async def start(self, positions: dict[tuple[str, int], int]) -> None:
        self._position = max((positions.get(("", 0), 1) - 1), 0)
        self._conn = await asyncio.to_thread(self._connect)

    def _connect(self) -> sqlite3.Connection:
        return read_only(self.path, threads=True)

    def _read(self) -> list[Item]:
        assert self._conn is not None
        items = select(self._conn, after=self._position, limit=BATCH, topics=self.topics)
        return items

    async def fetch(self) -> list[Item]:
        # A cancelled fetch leaves its read running on the thread; close() waits for it,
        # since closing a connection another thread is reading from crashes the process.
        self._reading = asyncio.ensure_future(asyncio.to_thread(self._read))
        records = await asyncio.shield(self._reading)
        if records:
            self._position = records[-1].offset
        return records

    async def close(self) -> None:
        if self._reading is not None:
            await asyncio.wait([self._reading])
            self._reading = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await asyncio.to_thread(conn.close)


class KafkaFeed:
    adjacent_raw = False

    def __init__(self, config: Kafka, topics: Sequence[str]) -> None:
        self.topics = list(topics)
        self._config = config
        self._consumer: Any = None  # made in start(): aiokafka needs the running loop
        self._assigned: set[str] = set()
        self._positions: dict[tuple[str, int], int] = {}
        self._checked = 0.0

    async def start(self, positions: dict[tuple[str, int], int]) -> None:
        self._positions = positions
        self._consumer = outside_group(
            self._config, auto_offset_reset="earliest", isolation_level="read_committed"
        )
        await self._consumer.start()
        await self._assign()

    async def _assign(self) -> None:
        """Topics appear as they are first written to: look again now and then."""
        self._checked = time.monotonic()
        # what consumer.topics() reads: partitions of topics nobody subscribed to included
        cluster = await self._consumer._client.fetch_all_metadata()
        partitions = [
            TopicPartition(topic, partition)
            for topic in self.topics
            for partition in sorted(cluster.partitions_for_topic(topic) or ())
        ]
        if {tp.topic for tp in partitions} == self._assigned and partitions:
            return
        for tp in self._consumer.assignment():  # assign() forgets where these were
            self._positions[(tp.topic, tp.partition)] = await self._consumer.position(tp)
        self._consumer.assign(partitions)
        self._assigned = {tp.topic for tp in partitions}
        for tp in partitions:
            stored = self._positions.get((tp.topic, tp.partition))
            if stored is not None:
                self._consumer.seek(tp, stored)

    async def fetch(self) -> list[Item]:
        if len(self._assigned) < len(self.topics) and time.monotonic() - self._checked > 1:
            await self._assign()
        if not self._assigned:
            await asyncio.sleep(IDLE_SECONDS)
            return []
        batches = await self._consumer.getmany(
            timeout_ms=int(IDLE_SECONDS * 1000), max_records=BATCH
        )
        return [
            kafka_item(m, (tp.topic, tp.partition, 0))
            for tp, messages in batches.items()
            for m in messages
        ]

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()


class Indexer:
    """Keeps the index up with the bus, in the delivery role."""

    def __init__(self, index: Index, feed: Feed) -> None:
        self.index = index
        self.feed = feed
        self._task: asyncio.Task[None] | None = None
        self.indexed = 0
        self.caught_up = asyncio.Event()

    @classmethod
    def for_config(cls, config: Config) -> Indexer:
        index = Index(
            config.data_path,
            topics=(config.topics.raw, config.topics.deadletter, config.topics.attempts),
            max_events=config.console.index_max_events,
            retention_ms=int(config.retention * 1000) or None,
        )
        feed: Feed
        if config.kafka is None:
            feed = EmbeddedFeed(config.data_path, index_topics(config))
        else:
            feed = KafkaFeed(config.kafka, index_topics(config))
        return cls(index, feed)

    async def start(self) -> None:
        positions = await asyncio.to_thread(self.index.positions)
        await self.feed.start(positions)
        self._task = asyncio.create_task(self._run(), name="indexer")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.feed.close()
        await asyncio.to_thread(self.index.close)

    def _add(self, records: list[Item]) -> int:
        if self.feed.adjacent_raw:
            # one offset sequence for every topic: its position is stored under topic ""
            last = records[-1]
            marker = Item(("", 0, 0), last.offset, "", None, b"", (), 0)
            return self.index.add([*records, marker], adjacent_raw=True)
        return self.index.add(records)

    async def _run(self) -> None:
        trimmed = time.monotonic()
        delay = 1.0
        while True:
            try:
                records = await self.feed.fetch()
                if records:
                    self.indexed += await asyncio.to_thread(self._add, records)
                    delay = 1.0
                else:
                    self.caught_up.set()
                    await asyncio.sleep(IDLE_SECONDS)
                if time.monotonic() - trimmed > TRIM_SECONDS:
                    trimmed = time.monotonic()
                    await asyncio.to_thread(self.index.trim)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the index is a convenience: never take delivery down
                log.warning("index_feed_failed", error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
