"""The embedded log: an append-only, fsynced log in SQLite (WAL) under ``data_dir``.

It is the bus when no Kafka is configured, so ``relay serve`` works with nothing
else running. Writes are group-committed on one writer thread: every record that
arrives while a commit is in progress goes into the next transaction, so many
concurrent requests share one fsync, and the event loop never blocks on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from relay import units
from relay.bus.base import BusError, Item, PublishProbe, Record, Stream

LOG_FILE = "log.sqlite3"
_MAX_BATCH_RECORDS = 4096

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    "offset"  INTEGER PRIMARY KEY AUTOINCREMENT,
    topic     TEXT    NOT NULL,
    key       BLOB,
    value     BLOB    NOT NULL,
    headers   BLOB    NOT NULL,
    timestamp INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_topic ON records (topic, "offset");
"""

_headers_encoder = msgspec.msgpack.Encoder()
_headers_decoder = msgspec.msgpack.Decoder(list[tuple[str, bytes]])


STREAM: Stream = ("", 0, 0)
"""The embedded log's one stream: one partition per topic, offsets shared by all topics."""
SELECT_RECORDS = 'SELECT "offset", topic, key, value, headers, timestamp FROM records'


def item(row: tuple[Any, ...]) -> Item:
    """A row of :data:`SELECT_RECORDS` as an :class:`Item`."""
    return Item(
        stream=STREAM,
        offset=row[0],
        topic=row[1],
        key=row[2],
        value=row[3],
        headers=tuple(_headers_decoder.decode(row[4])),
        timestamp_ms=row[5],
    )


PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def make_private(path: Path) -> None:
    """``data_dir`` 0700 and the database 0600 before SQLite opens it: it holds every raw
    webhook. SQLite gives its ``-wal`` and ``-shm`` files the database file's mode."""
    directory = path.parent
    directory.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    info = directory.stat()
    if info.st_mode & 0o077 and info.st_uid == os.geteuid():
        directory.chmod(PRIVATE_DIR)  # ours, but readable by others: tighten it
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, PRIVATE_FILE))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            if file.stat().st_mode & 0o077:
                file.chmod(PRIVATE_FILE)  # made by an older relay, or under another umask


_OPEN_TRIES = 100


def connect(path: Path) -> sqlite3.Connection:
    # Two processes opening a new database at once (--role ingress and --role delivery on one
    # data_dir) race to switch it to WAL; SQLite answers the loser "database is locked"
    # without waiting on the busy timeout. Opening again a moment later finds WAL in place.
    for attempt in range(_OPEN_TRIES):
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.executescript(_SCHEMA)
        except sqlite3.OperationalError as exc:
            conn.close()
            if "locked" not in str(exc) or attempt == _OPEN_TRIES - 1:
                raise
            time.sleep(0.02)
        else:
            return conn
    raise AssertionError("unreachable")


_Pending = tuple[Sequence[Record], asyncio.Future[float]]
"""Records and the future their commit answers (with when the commit began)."""
_STOP = object()


class EmbeddedLog:
    """The embedded bus. ``publish`` returns once the records are committed to disk."""

    name = "embedded"
    mode: str | None = None

    def __init__(
        self, data_dir: Path, file_name: str = LOG_FILE, retention: float | None = None
    ) -> None:
        self.path = Path(data_dir) / file_name
        self.retention_ms = int(retention * 1000) if retention else None
        self.trim_interval = 60.0
        self._trimmed_at = 0.0
        self._queue: queue.SimpleQueue[_Pending | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        await asyncio.to_thread(make_private, self.path)
        self._loop = asyncio.get_running_loop()
        self._conn = await asyncio.to_thread(connect, self.path)
        self._thread = threading.Thread(target=self._run, name="embedded-log", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        if self._thread is not None:
            self._queue.put(_STOP)
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def ready(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    async def publish(self, records: Sequence[Record], probe: PublishProbe | None = None) -> None:
        if not records:
            return
        if not self.ready():
            raise BusError("the embedded log is not running")
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._queue.put((records, future))
        began = await future
        if probe is not None:
            probe.sent_at = began

    def _run(self) -> None:
        assert self._conn is not None
        stopping = False
        while not stopping:
            batch: list[_Pending] = []
            item = self._queue.get()
            count = 0
            while True:
                if item is _STOP:
                    stopping = True
                else:
                    pending = item
                    batch.append(pending)  # type: ignore[arg-type]
                    count += len(pending[0])  # type: ignore[index]
                if stopping or count >= _MAX_BATCH_RECORDS:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._commit(batch)
        # A publish that raced close() must not wait forever.
        left: list[asyncio.Future[float]] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not _STOP:
                left.append(item[1])  # type: ignore[index]
        if left:
            self._answer(left, BusError("the embedded log was closed"))
        self._trim_if_due(force=False)

    def _answer(
        self, futures: list[asyncio.Future[float]], error: BaseException | None, began: float = 0.0
    ) -> None:
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            self._loop.call_soon_threadsafe(_resolve_all, futures, error, began)

    def _trim_if_due(self, force: bool) -> None:
        """Drop records older than the retention, at most once a minute (like Kafka's)."""
        if self.retention_ms is None or self._conn is None:
            return
        now = time.monotonic()
        if not force and now - self._trimmed_at < self.trim_interval:
            return
        self._trimmed_at = now
        cutoff = units.now_ms() - self.retention_ms
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("DELETE FROM records WHERE timestamp < ?", (cutoff,))

    def _commit(self, batch: list[_Pending]) -> None:
        assert self._conn is not None and self._loop is not None
        began = time.monotonic()
        now = units.now_ms()
        rows = [
            (r.topic, r.key, r.value, _headers_encoder.encode(r.headers), now)
            for records, _ in batch
            for r in records
        ]
        error: BaseException | None = None
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(
                "INSERT INTO records (topic, key, value, headers, timestamp) VALUES (?,?,?,?,?)",
                rows,
            )
            self._conn.execute("COMMIT")
        except Exception as exc:  # whatever it is, every waiting request must hear of it
            error = BusError(f"embedded log write failed: {exc}")
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
        # One wake-up of the event loop per commit, however many requests it answers.
        self._answer([future for _, future in batch], error, began)
        self._trim_if_due(force=False)


def _resolve_all(
    futures: list[asyncio.Future[float]], error: BaseException | None, began: float
) -> None:
    for future in futures:
        _resolve(future, error, began)


def _resolve(future: asyncio.Future[float], error: BaseException | None, began: float) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(began)
    else:
        future.set_exception(error)


def select(
    conn: sqlite3.Connection,
    *,
    after: int,
    limit: int,
    topics: Sequence[str] | None = None,
    through: int | None = None,
) -> list[Item]:
    """Records after an offset (on ``topics``, up to ``through``), oldest first."""
    query = SELECT_RECORDS + ' WHERE "offset" > ?'
    params: list[object] = [after]
    if topics is not None:
        query += f" AND topic IN ({','.join('?' for _ in topics)})"
        params.extend(topics)
    if through is not None:
        query += ' AND "offset" <= ?'
        params.append(through)
    query += ' ORDER BY "offset" LIMIT ?'
    params.append(limit)
    return [item(row) for row in conn.execute(query, params).fetchall()]


def read_only(path: Path, *, threads: bool = False) -> sqlite3.Connection:
    """A connection that never writes; safe while a writer is running (WAL)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=not threads)
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def read(path: Path, topic: str | None = None, after: int = 0, limit: int = 1000) -> list[Item]:
    """Records after an offset, oldest first; safe while a writer is running (WAL)."""
    conn = read_only(path)
    try:
        return select(conn, after=after, limit=limit, topics=None if topic is None else [topic])
    finally:
        conn.close()


def read_at(path: Path, offsets: Sequence[int]) -> list[Item | None]:
    """The records at these offsets, in that order; None where retention removed one."""
    conn = read_only(path)
    try:
        found: list[Item | None] = []
        for offset in offsets:
            row = conn.execute(SELECT_RECORDS + ' WHERE "offset" = ?', (offset,)).fetchone()
            found.append(None if row is None else item(row))
        return found
    finally:
        conn.close()


def offset_before_last(path: Path, topic: str, count: int) -> int:
    """The offset after which a topic's last ``count`` records start (0: all of them)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute(
            'SELECT "offset" FROM records WHERE topic = ? ORDER BY "offset" DESC LIMIT 1 OFFSET ?',
            (topic, count),
        ).fetchone()
    finally:
        conn.close()
    return int(row[0]) if row is not None else 0


def depth(path: Path) -> tuple[int, int]:
    """How many records the log holds, and their bytes (value, key and headers)."""
    conn = connect(path)
    try:
        rows = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(value) + COALESCE(LENGTH(key), 0)"
            " + LENGTH(headers)), 0) FROM records"
        ).fetchone()
        return int(rows[0]), int(rows[1])
    finally:
        conn.close()


def delete_through(path: Path, offset: int) -> None:
    """Drop every record up to and including ``offset`` (the spool, once Kafka has them)."""
    conn = connect(path)
    try:
        conn.execute('DELETE FROM records WHERE "offset" <= ?', (offset,))
    finally:
        conn.close()
