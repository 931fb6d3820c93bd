"""Where a subscriber reads events from: a Kafka consumer group, or the embedded log.

Both give the same semantics: records in order per stream, and commits that record
the next offset to read, so a restart resumes after the last finished record.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Literal, Protocol, TypeVar

import msgspec
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import (
    KafkaError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
    UnsupportedVersionError,
)

from relay.bus.base import Headers
from relay.bus.embedded import LOG_FILE, connect
from relay.bus.kafka.security import client_options
from relay.config import Kafka
from relay.delivery.watermark import Stream

log = structlog.get_logger("relay.delivery")

StartFrom = Literal["latest", "earliest"]
_EMBEDDED_STREAM: Stream = ("", 0, 0)
_T = TypeVar("_T")
_IDLE_POLL_SECONDS = 0.05


class SourceBusy(Exception):
    """Another process holds this subscriber's position; wait and try again (standby)."""


class Item(msgspec.Struct, frozen=True):
    """One record read for a subscriber."""

    stream: Stream
    offset: int
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers
    timestamp_ms: int


class Source(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def fetch(self, max_records: int, wait: float) -> list[Item] | None:
        """The next records (maybe none); None once a bounded source is exhausted."""
        ...

    async def commit(self, positions: dict[Stream, int]) -> None: ...

    async def backlog(self) -> int:
        """Records on the topics that were not fetched yet."""
        ...


Revoked = Callable[[set[Stream]], Awaitable[None]]
"""Called before partitions are taken away: commit what is finished, forget the rest."""


# --- Kafka -------------------------------------------------------------------------


class KafkaSource:
    """A consumer group ``relay.sub.<name>``; commits are explicit, never automatic.

    A partition the group never committed starts at ``anchor_ms`` (the subscriber's first
    start) for ``latest``, at its beginning for ``earliest``; the start is committed at once,
    so neither a slow join, a rebalance nor a restart moves it. A committed position that
    retention already deleted resumes at the oldest record left.
    """

    def __init__(
        self,
        config: Kafka,
        group_id: str,
        topics: Sequence[str],
        start_from: StartFrom,
        anchor_ms: int | None = None,
    ) -> None:
        self._topics = list(topics)
        self._group_id = group_id
        self._start_from = start_from
        self._anchor_ms = anchor_ms
        self._generation: dict[Any, int] = {}
        self.on_revoked: Revoked | None = None
        self._consumer: Any = AIOKafkaConsumer(
            **client_options(config),
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="none",  # relay decides: see _place
            isolation_level="read_committed",
            session_timeout_ms=config.session_timeout_ms,
            heartbeat_interval_ms=config.heartbeat_interval_ms,
        )

    async def start(self) -> None:
        self._consumer.subscribe(self._topics, listener=_Rebalance(self))
        await self._consumer.start()

    async def close(self) -> None:
        await self._consumer.stop()

    def _stream(self, tp: Any) -> Stream:
        return (tp.topic, tp.partition, self._generation.get(tp, 0))

    async def _revoke(self, partitions: set[Any]) -> None:
        if self.on_revoked is not None:
            await self.on_revoked({self._stream(tp) for tp in partitions})

    def _assign(self, partitions: set[Any]) -> None:
        for tp in partitions:
            self._generation[tp] = self._generation.get(tp, 0) + 1

    async def fetch(self, max_records: int, wait: float) -> list[Item] | None:
        try:
            batches = await self._consumer.getmany(
                timeout_ms=int(wait * 1000), max_records=max_records
            )
        except NoOffsetForPartitionError as exc:
            if exc.args:
                await self._place(exc.args[0])
            return []
        except OffsetOutOfRangeError as exc:
            positions = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
            for tp in positions:
                if tp in self._consumer.assignment():
                    log.warning("position_out_of_range", topic=tp.topic, partition=tp.partition)
                    await self._consumer.seek_to_beginning(tp)
            return []
        return [
            _kafka_item(message, self._stream(tp))
            for tp, messages in batches.items()
            for message in messages
        ]

    async def _place(self, tp: Any) -> None:
        """The first position of a partition this group never committed, committed at once."""
        consumer = self._consumer
        if tp not in consumer.assignment():
            return  # taken away meanwhile: its next owner places it
        if self._start_from == "earliest":
            offset = (await consumer.beginning_offsets([tp]))[tp]
        elif self._anchor_ms is None:
            offset = (await consumer.end_offsets([tp]))[tp]
        else:
            # the end first: whatever is published after it has a later offset
            end = (await consumer.end_offsets([tp]))[tp]
            try:
                found = (await consumer.offsets_for_times({tp: self._anchor_ms})).get(tp)
            except UnsupportedVersionError:  # a broker older than 0.10.1
                log.warning("anchor_by_time_unsupported", topic=tp.topic, partition=tp.partition)
                found = None
            # some brokers answer "nothing that late" with a placeholder, not null
            late_enough = found is not None and found.timestamp >= self._anchor_ms
            offset = min(found.offset, end) if late_enough else end
        if tp not in consumer.assignment():
            return  # taken away while we asked
        consumer.seek(tp, offset)
        log.info(
            "subscription_anchored",
            group=self._group_id,
            topic=tp.topic,
            partition=tp.partition,
            offset=offset,
            start_from=self._start_from,
        )
        try:
            await consumer.commit({tp: offset})
        except KafkaError as exc:  # placed anyway; the next commit records a position
            log.warning("commit_failed", error=str(exc))

    async def commit(self, positions: dict[Stream, int]) -> None:
        assignment = self._consumer.assignment()
        offsets = {}
        for (topic, partition, generation), next_offset in positions.items():
            tp = TopicPartition(topic, partition)
            # only what is still ours, read under the current assignment
            if tp in assignment and self._generation.get(tp, 0) == generation:
                offsets[tp] = next_offset
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:  # e.g. partitions moved in a rebalance: re-read there
            log.warning("commit_failed", error=str(exc))

    async def backlog(self) -> int:
        total = 0
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            if highwater is not None:
                total += max(0, highwater - await self._consumer.position(tp))
        return total


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, source: KafkaSource) -> None:
        self.source = source

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        await self.source._revoke(set(revoked))

    async def on_partitions_assigned(self, assigned: set[Any]) -> None:
        self.source._assign(set(assigned))


def _kafka_item(message: Any, stream: Stream) -> Item:
    return Item(
        stream=stream,
        offset=message.offset,
        topic=message.topic,
        key=message.key,
        value=message.value,
        headers=tuple(message.headers or ()),
        timestamp_ms=message.timestamp,
    )


class KafkaRange:
    """A bounded read for replay: from a time or an offset up to the end seen at start."""

    def __init__(
        self,
        config: Kafka,
        topics: Sequence[str],
        *,
        since_ms: int | None = None,
        from_offset: int | None = None,
    ) -> None:
        self._consumer: Any = AIOKafkaConsumer(
            **client_options(config),
            group_id=None,
            enable_auto_commit=False,
        )
        self._topics = list(topics)
        self._since_ms = since_ms
        self._from_offset = from_offset
        self._end: dict[TopicPartition, int] = {}

    async def start(self) -> None:
        consumer = self._consumer
        await consumer.start()
        partitions = [
            TopicPartition(topic, partition)
            for topic in self._topics
            for partition in sorted(await _partitions(consumer, topic))
        ]
        consumer.assign(partitions)
        self._end = dict(await consumer.end_offsets(partitions)) if partitions else {}
        beginning = await consumer.beginning_offsets(partitions) if partitions else {}
        by_time = (
            await consumer.offsets_for_times({tp: self._since_ms for tp in partitions})
            if self._since_ms is not None and partitions
            else {}
        )
        for tp in partitions:
            if self._since_ms is not None:
                found = by_time.get(tp)
                # Some brokers answer "nothing that late" with a placeholder, not null.
                if found is not None and found.timestamp >= self._since_ms:
                    start = found.offset
                else:
                    start = self._end[tp]
            else:
                start = max(self._from_offset or 0, beginning[tp])
            consumer.seek(tp, min(start, self._end[tp]))
        self._end = {tp: end for tp, end in self._end.items() if end > 0}

    async def close(self) -> None:
        await self._consumer.stop()

    async def fetch(self, max_records: int, wait: float) -> list[Item] | None:
        consumer = self._consumer
        remaining = {tp for tp, end in self._end.items() if await consumer.position(tp) < end}
        if not remaining:
            return None
        batches = await consumer.getmany(
            *remaining, timeout_ms=int(wait * 1000), max_records=max_records
        )
        return [
            _kafka_item(message, (tp.topic, tp.partition, 0))
            for tp, messages in batches.items()
            for message in messages
            if message.offset < self._end.get(tp, 0)
        ]

    async def commit(self, positions: dict[Stream, int]) -> None:
        return None

    async def backlog(self) -> int:
        return 0


async def _partitions(consumer: Any, topic: str) -> set[int]:
    for _ in range(50):
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return set(partitions)
        await consumer.topics()  # refreshes the cluster metadata
        await asyncio.sleep(0.1)
    return set()


# --- Embedded log --------------------------------------------------------------------

_OFFSETS_SCHEMA = """
CREATE TABLE IF NOT EXISTS consumer_offsets (
    consumer TEXT PRIMARY KEY,
    "offset" INTEGER NOT NULL
);
"""
_headers_decoder = msgspec.msgpack.Decoder(list[tuple[str, bytes]])


class EmbeddedSource:
    """The embedded log read for one consumer, its position kept in the same database."""

    def __init__(
        self,
        data_dir: Path,
        consumer: str,
        topics: Sequence[str],
        start_from: StartFrom,
        *,
        since_ms: int | None = None,
        from_offset: int | None = None,
        bounded: bool = False,
        anchor_ms: int | None = None,
    ) -> None:
        self.path = Path(data_dir) / LOG_FILE
        self._anchor_ms = anchor_ms
        self.consumer = consumer
        self.topics = list(topics)
        self.start_from = start_from
        self._since_ms = since_ms
        self._from_offset = from_offset
        self._bounded = bounded
        self._position = 0
        self._end = 0
        self._conn: sqlite3.Connection | None = None
        self._lock_handle: BinaryIO | None = None
        self._busy = asyncio.Lock()
        self._thread_call: asyncio.Future[Any] | None = None

    def _lock(self) -> None:
        """One delivering process per subscriber on an embedded log; others stand by."""
        lock_path = self.path.parent / f".{self.consumer}.lock"
        handle = open(lock_path, "a+b")  # noqa: SIM115 - held until close()
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise SourceBusy(
                f"another process delivers for {self.consumer} from {self.path}"
            ) from None
        self._lock_handle = handle

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self._bounded:
            self._lock()
        conn = connect(self.path)
        conn.executescript(_OFFSETS_SCHEMA)
        self._conn = conn
        latest = conn.execute('SELECT COALESCE(MAX("offset"), 0) FROM records').fetchone()[0]
        if self._from_offset is not None:
            self._position = max(0, self._from_offset - 1)
        elif self._since_ms is not None:
            row = conn.execute(
                'SELECT MIN("offset") FROM records WHERE timestamp >= ?', (self._since_ms,)
            ).fetchone()
            self._position = (row[0] - 1) if row[0] is not None else latest
        else:
            stored = conn.execute(
                'SELECT "offset" FROM consumer_offsets WHERE consumer = ?', (self.consumer,)
            ).fetchone()
            if stored is not None:
                self._position = stored[0]
            else:
                self._position = self._first_position(conn, latest)
                if not self._bounded:
                    self._store(self._position)
        self._end = latest

    def _first_position(self, conn: sqlite3.Connection, latest: int) -> int:
        """Where a consumer that never committed starts: see KafkaSource for the rule."""
        if self.start_from == "earliest":
            return 0
        if self._anchor_ms is None:
            return latest
        row = conn.execute(
            'SELECT MIN("offset") FROM records WHERE timestamp >= ?', (self._anchor_ms,)
        ).fetchone()
        return int(row[0]) - 1 if row[0] is not None else latest

    def _store(self, position: int) -> None:
        assert self._conn is not None
        self._conn.execute(
            'INSERT INTO consumer_offsets (consumer, "offset") VALUES (?, ?) '
            'ON CONFLICT(consumer) DO UPDATE SET "offset" = excluded."offset"',
            (self.consumer, position),
        )

    async def start(self) -> None:
        await asyncio.to_thread(self._open)

    async def _in_thread(self, function: Callable[..., _T], *args: Any) -> _T:
        """Run on a thread; a cancelled caller leaves the call running, and close() waits."""
        self._thread_call = asyncio.ensure_future(asyncio.to_thread(function, *args))
        return await asyncio.shield(self._thread_call)

    async def close(self) -> None:
        if self._thread_call is not None:
            await asyncio.wait([self._thread_call])
        async with self._busy:  # no read or commit may still be using the connection
            if self._conn is not None:
                conn, self._conn = self._conn, None
                await asyncio.to_thread(conn.close)
        if self._lock_handle is not None:
            self._lock_handle.close()  # releases the lock
            self._lock_handle = None

    def _read(self, max_records: int) -> list[Item]:
        assert self._conn is not None
        marks = ",".join("?" for _ in self.topics)
        query = (
            'SELECT "offset", topic, key, value, headers, timestamp FROM records '
            f'WHERE "offset" > ? AND topic IN ({marks})'
        )
        params: list[Any] = [self._position, *self.topics]
        if self._bounded:
            query += ' AND "offset" <= ?'
            params.append(self._end)
        query += ' ORDER BY "offset" LIMIT ?'
        params.append(max_records)
        rows = self._conn.execute(query, params).fetchall()
        return [
            Item(
                stream=_EMBEDDED_STREAM,
                offset=row[0],
                topic=row[1],
                key=row[2],
                value=row[3],
                headers=tuple(_headers_decoder.decode(row[4])),
                timestamp_ms=row[5],
            )
            for row in rows
        ]

    async def fetch(self, max_records: int, wait: float) -> list[Item] | None:
        async with self._busy:
            items = await self._in_thread(self._read, max_records)
        if items:
            self._position = items[-1].offset
            return items
        if self._bounded:
            return None
        await asyncio.sleep(min(wait, _IDLE_POLL_SECONDS))
        return []

    def _count_after(self, position: int) -> int:
        assert self._conn is not None
        marks = ",".join("?" for _ in self.topics)
        row = self._conn.execute(
            f'SELECT COUNT(*) FROM records WHERE "offset" > ? AND topic IN ({marks})',
            [position, *self.topics],
        ).fetchone()
        return int(row[0])

    async def backlog(self) -> int:
        async with self._busy:
            if self._conn is None:
                return 0
            return await self._in_thread(self._count_after, self._position)

    async def commit(self, positions: dict[Stream, int]) -> None:
        next_offset = positions.get(_EMBEDDED_STREAM)
        if next_offset is None or self._bounded:
            return
        async with self._busy:
            with contextlib.suppress(sqlite3.Error):
                await self._in_thread(self._store, next_offset - 1)
