"""Reading the embedded log for one consumer: its position in the same database, a lock so
one process delivers per subscriber (the others stand by), bounded reads for replay."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from relay.bus.base import (
    FromOffset,
    Item,
    RangeStart,
    Revoked,
    Since,
    StartFrom,
    Stream,
    SubscriptionBusy,
)
from relay.bus.claim import try_lock
from relay.bus.embedded.log import LOG_FILE, STREAM, connect, select

_T = TypeVar("_T")
_IDLE_POLL_SECONDS = 0.05
_OFFSETS_SCHEMA = """
CREATE TABLE IF NOT EXISTS consumer_offsets (
    consumer TEXT PRIMARY KEY,
    "offset" INTEGER NOT NULL
);
"""


class EmbeddedSubscription:
    """The embedded log read for one consumer, its position kept in the same database."""

    on_revoked: Revoked | None = None  # one process reads a subscriber's log: nothing moves

    def __init__(
        self,
        data_dir: Path,
        consumer: str,
        topics: Sequence[str],
        start_from: StartFrom,
        *,
        range_start: RangeStart | None = None,
        bounded: bool = False,
        anchor_ms: int | None = None,
    ) -> None:
        self.path = Path(data_dir) / LOG_FILE
        self._anchor_ms = anchor_ms
        self.consumer = consumer
        self.topics = list(topics)
        self.start_from = start_from
        self._range_start = range_start
        self._bounded = bounded
        self._position = 0
        self._end = 0
        self._conn: sqlite3.Connection | None = None
        self._lock_handle: BinaryIO | None = None
        self._busy = asyncio.Lock()
        self._thread_call: asyncio.Future[Any] | None = None

    def _lock(self) -> None:
        """One delivering process per subscriber on an embedded log; others stand by."""
        handle = try_lock(self.path.parent / f".{self.consumer}.lock")  # held until close()
        if handle is None:
            raise SubscriptionBusy(f"another process delivers for {self.consumer} from {self.path}")
        self._lock_handle = handle

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self._bounded:
            self._lock()
        conn = connect(self.path)
        conn.executescript(_OFFSETS_SCHEMA)
        self._conn = conn
        latest = conn.execute('SELECT COALESCE(MAX("offset"), 0) FROM records').fetchone()[0]
        match self._range_start:
            case FromOffset(offset=offset):
                self._position = max(0, offset - 1)
            case Since(ms=ms):
                self._position = _before(conn, ms, latest)
            case None:
                self._position = self._resume(conn, latest)
        self._end = latest

    def _resume(self, conn: sqlite3.Connection, latest: int) -> int:
        """The committed position; else where a consumer that never committed starts, the
        rule of KafkaSubscription (stored at once by a live read)."""
        stored = conn.execute(
            'SELECT "offset" FROM consumer_offsets WHERE consumer = ?', (self.consumer,)
        ).fetchone()
        if stored is not None:
            return int(stored[0])
        if self.start_from == "earliest":
            position = 0
        elif self._anchor_ms is None:
            position = latest
        else:
            position = _before(conn, self._anchor_ms, latest)
        if not self._bounded:
            self._store(position)
        return position

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
        return select(
            self._conn,
            after=self._position,
            limit=max_records,
            topics=self.topics,
            through=self._end if self._bounded else None,
        )

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
        next_offset = positions.get(STREAM)
        if next_offset is None or self._bounded:
            return
        async with self._busy:
            with contextlib.suppress(sqlite3.Error):
                await self._in_thread(self._store, next_offset - 1)


def _before(conn: sqlite3.Connection, ms: int, latest: int) -> int:
    """The position just before the first record written at or after ``ms``; the end if none."""
    row = conn.execute('SELECT MIN("offset") FROM records WHERE timestamp >= ?', (ms,)).fetchone()
    return int(row[0]) - 1 if row[0] is not None else latest
