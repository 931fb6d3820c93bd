"""The index's SQLite file: its schema, its rows, and the connection.

Every call is a short blocking transaction (callers on the event loop use
``asyncio.to_thread``). Searches are newest first by event time, paged by a cursor that is
the last row's ``(time_ms, rowid)``; each filter has an index leading with its column, so
a page costs the same on a million events as on a thousand.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from relay.sqlite import SQLiteFile

INDEX_FILE = "index.sqlite3"
MAX_LIMIT = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    source TEXT NOT NULL,
    key TEXT NOT NULL,
    phone TEXT,
    chat_id TEXT,
    time_ms INTEGER NOT NULL,
    stored_ms INTEGER NOT NULL,
    delivery TEXT,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    raw_partition INTEGER,
    raw_offset INTEGER
);
CREATE INDEX IF NOT EXISTS events_time ON events (time_ms);
CREATE INDEX IF NOT EXISTS events_key ON events (key, time_ms);
CREATE INDEX IF NOT EXISTS events_phone ON events (phone, time_ms) WHERE phone IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_chat ON events (chat_id, time_ms) WHERE chat_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_type ON events (type, time_ms);
CREATE INDEX IF NOT EXISTS events_source ON events (source, time_ms);
CREATE INDEX IF NOT EXISTS events_stored ON events (stored_ms);
CREATE TABLE IF NOT EXISTS attempts (
    event_id TEXT NOT NULL,
    subscriber TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    duration_ms REAL NOT NULL,
    outcome TEXT NOT NULL,
    status INTEGER,
    error TEXT,
    excerpt TEXT,
    replay INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS attempts_event ON attempts (event_id, at_ms);
CREATE INDEX IF NOT EXISTS attempts_subscriber ON attempts (subscriber, at_ms);
CREATE INDEX IF NOT EXISTS attempts_time ON attempts (at_ms);
CREATE TABLE IF NOT EXISTS deadletters (
    rowid INTEGER PRIMARY KEY,
    event_id TEXT,
    subscriber TEXT,
    source TEXT,
    reason TEXT NOT NULL,
    attempts INTEGER,
    status INTEGER,
    error TEXT,
    at_ms INTEGER NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deadletters_event ON deadletters (event_id);
CREATE INDEX IF NOT EXISTS deadletters_subscriber ON deadletters (subscriber, at_ms);
CREATE TABLE IF NOT EXISTS raw (
    rowid INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    request_id TEXT,
    delivery TEXT,
    received_ms INTEGER NOT NULL,
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS raw_delivery ON raw (delivery) WHERE delivery IS NOT NULL;
CREATE INDEX IF NOT EXISTS raw_source ON raw (source, received_ms);
CREATE INDEX IF NOT EXISTS raw_place ON raw (partition, "offset");
CREATE TABLE IF NOT EXISTS positions (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
);
"""


class _Contact(msgspec.Struct):
    phone: str | None = None
    chat_id: str | None = None


class _Data(msgspec.Struct):
    source: str
    contact: _Contact | None = None


class _Head(msgspec.Struct):
    id: str
    type: str
    partitionkey: str
    time: str
    data: _Data
    providerdelivery: str | None = None


_head = msgspec.json.Decoder(_Head)


class Filters(msgspec.Struct, frozen=True, kw_only=True):
    type: str | None = None
    source: str | None = None
    key: str | None = None
    """The conversation: the events' ``partitionkey``."""
    phone: str | None = None
    """A contact phone (E.164; digits alone match too) or chat id."""
    since_ms: int | None = None
    until_ms: int | None = None


class EventRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    type: str
    source: str
    key: str
    phone: str | None
    chat_id: str | None
    time_ms: int
    stored_ms: int
    topic: str
    partition: int
    offset: int


class Page(msgspec.Struct, frozen=True):
    events: list[EventRow]
    next_cursor: str | None


class RawRef(msgspec.Struct, frozen=True, kw_only=True):
    topic: str
    partition: int
    offset: int
    request_id: str | None
    received_ms: int
    matched_by: str
    """``adjacent`` (same bus write), ``delivery`` (the provider's delivery id) or
    ``nearest`` (same source, closest receive time: likely, not certain)."""


class AttemptRow(msgspec.Struct, frozen=True, kw_only=True):
    event_id: str
    subscriber: str
    attempt: int
    at_ms: int
    duration_ms: float
    outcome: str
    status: int | None
    error: str | None
    excerpt: str | None
    replay: bool


class DeadLetterRow(msgspec.Struct, frozen=True, kw_only=True):
    event_id: str | None
    subscriber: str | None
    source: str | None
    reason: str
    attempts: int | None
    status: int | None
    error: str | None
    at_ms: int
    topic: str
    partition: int
    offset: int


def parse_time_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def _int(value: bytes | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _text(value: bytes | None) -> str | None:
    return value.decode("utf-8", "replace") if value else None


_EVENT_COLUMNS = (
    'id, type, source, key, phone, chat_id, time_ms, stored_ms, topic, partition, "offset"'
)
_ATTEMPT_COLUMNS = (
    "event_id, subscriber, attempt, at_ms, duration_ms, outcome, status, error, excerpt, replay"
)
_DL_COLUMNS = (
    "event_id, subscriber, source, reason, attempts, status, error, at_ms, "
    'topic, partition, "offset"'
)


class Base(SQLiteFile):
    """The connection and the lock; the queries and the writes build on it."""

    schema = _SCHEMA
    synchronous = "NORMAL"  # a cache: rebuilt from the bus if lost

    def __init__(
        self,
        data_dir: Path,
        *,
        topics: tuple[str, str, str],
        max_events: int = 2_000_000,
        retention_ms: int | None = None,
    ) -> None:
        """``topics``: the raw, dead-letter and attempts topics; any other is an event topic."""
        super().__init__(Path(data_dir) / INDEX_FILE)
        self.raw_topic, self.deadletter_topic, self.attempts_topic = topics
        self.max_events = max_events
        self.retention_ms = retention_ms
        self._last_raw: dict[int, int] = {}
        """Embedded log: the raw record last seen, by partition: the next events are its."""

    # --- feeding ------------------------------------------------------------------------


_EVENT_FIELDS = (
    "id",
    "type",
    "source",
    "key",
    "phone",
    "chat_id",
    "time_ms",
    "stored_ms",
    "topic",
    "partition",
    "offset",
)
_DL_FIELDS = (
    "event_id",
    "subscriber",
    "source",
    "reason",
    "attempts",
    "status",
    "error",
    "at_ms",
    "topic",
    "partition",
    "offset",
)


def _attempt_row(row: Sequence[Any]) -> AttemptRow:
    return AttemptRow(
        event_id=row[0],
        subscriber=row[1],
        attempt=row[2],
        at_ms=row[3],
        duration_ms=row[4],
        outcome=row[5],
        status=row[6],
        error=row[7],
        excerpt=row[8],
        replay=bool(row[9]),
    )


def _percentile(values: list[float], q: float) -> float:
    index = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return round(values[index], 3)
