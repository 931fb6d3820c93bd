"""Adding bus records to the index, and keeping it bounded."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from relay import units
from relay.attempts import decode_attempt
from relay.bus import Item
from relay.cloudevents import from_binary, is_binary
from relay.deadletters import describe
from relay.index.model import (
    _ATTEMPT_COLUMNS,
    _DL_COLUMNS,
    _EVENT_COLUMNS,
    INDEX_FILE,
    AttemptRow,
    DeadLetterRow,
    EventRow,
    Filters,
    Page,
    RawRef,
    _Contact,
    _Data,
    _Head,
    _head,
    _text,
    parse_time_ms,
)
from relay.index.queries import Queries

__all__ = [
    "INDEX_FILE",
    "AttemptRow",
    "DeadLetterRow",
    "EventRow",
    "Filters",
    "Index",
    "Page",
    "RawRef",
]


class Index(Queries):
    def positions(self) -> dict[tuple[str, int], int]:
        with self._lock:
            rows = self._db().execute("SELECT topic, partition, next_offset FROM positions")
            return {(topic, partition): offset for topic, partition, offset in rows}

    def add(self, records: Iterable[Item], *, adjacent_raw: bool = False) -> int:
        """Index a batch in one transaction, and store the positions after it.

        ``adjacent_raw``: records come in the bus's write order across topics (the
        embedded log), so an event's raw body is the raw record written just before it.
        """
        events: list[tuple[Any, ...]] = []
        attempts: list[tuple[Any, ...]] = []
        deadletters: list[tuple[Any, ...]] = []
        raws: list[tuple[Any, ...]] = []
        ends: dict[tuple[str, int], int] = {}
        for record in records:
            ends[(record.topic, record.partition)] = record.offset + 1
            topic = record.topic
            headers = dict(record.headers)
            try:
                if topic == self.attempts_topic:
                    attempts.append(msgspec.structs.astuple(decode_attempt(record.value)))
                elif topic == self.deadletter_topic:
                    why = describe(headers)
                    deadletters.append(
                        (
                            why.event_id,
                            why.subscriber,
                            why.source,
                            why.reason or "unknown",
                            why.attempts,
                            why.last_status,
                            why.error,
                            record.timestamp_ms,
                            topic,
                            record.partition,
                            record.offset,
                        )
                    )
                elif topic == self.raw_topic:
                    self._last_raw[record.partition] = record.offset
                    raws.append(
                        (
                            _text(headers.get("relay-source")) or _text(record.key) or "",
                            _text(headers.get("relay-request-id")),
                            _text(headers.get("relay-delivery-id")),
                            record.timestamp_ms,
                            topic,
                            record.partition,
                            record.offset,
                        )
                    )
                else:
                    events.append(self._event_row(record, headers, adjacent_raw))
            except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
                continue  # not something the index can read: the bus keeps it anyway
        with self._lock:
            db = self._db()
            db.execute("BEGIN")
            try:
                db.executemany(
                    f"INSERT OR IGNORE INTO events ({_EVENT_COLUMNS}, delivery, raw_partition, "
                    f"raw_offset) VALUES ({','.join('?' * 14)})",
                    events,
                )
                db.executemany(
                    f"INSERT INTO attempts ({_ATTEMPT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    attempts,
                )
                db.executemany(
                    f"INSERT INTO deadletters ({_DL_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    deadletters,
                )
                db.executemany(
                    "INSERT INTO raw (source, request_id, delivery, received_ms, topic, "
                    'partition, "offset") VALUES (?,?,?,?,?,?,?)',
                    raws,
                )
                db.executemany(
                    "INSERT INTO positions (topic, partition, next_offset) VALUES (?,?,?) "
                    "ON CONFLICT(topic, partition) DO UPDATE SET "
                    "next_offset = excluded.next_offset",
                    [(topic, partition, end) for (topic, partition), end in ends.items()],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return len(events) + len(attempts) + len(deadletters) + len(raws)

    def _event_row(
        self, record: Item, headers: dict[str, bytes], adjacent_raw: bool
    ) -> tuple[Any, ...]:
        if is_binary(headers):
            event = from_binary(record.value, headers)
            head = _Head(
                id=event.id,
                type=event.type,
                partitionkey=event.partitionkey,
                time=event.time,
                providerdelivery=event.providerdelivery,
                data=_Data(
                    source=event.data.source,
                    contact=_Contact(event.data.contact.phone, event.data.contact.chat_id)
                    if event.data.contact is not None
                    else None,
                ),
            )
        else:
            head = _head.decode(record.value)
        contact = head.data.contact
        raw_offset = self._last_raw.get(record.partition) if adjacent_raw else None
        return (
            head.id,
            head.type,
            head.data.source,
            head.partitionkey,
            contact.phone if contact else None,
            contact.chat_id if contact else None,
            parse_time_ms(head.time),
            record.timestamp_ms,
            record.topic,
            record.partition,
            record.offset,
            head.providerdelivery,
            record.partition if raw_offset is not None else None,
            raw_offset,
        )

    def trim(self, now_ms: int | None = None) -> int:
        """Forget what is past the retention, and the oldest events past ``max_events``."""
        now = units.now_ms() if now_ms is None else now_ms
        removed = 0
        with self._lock:
            db = self._db()
            if self.retention_ms is not None:
                cutoff = now - self.retention_ms
                for table, column in (
                    ("events", "stored_ms"),
                    ("attempts", "at_ms"),
                    ("deadletters", "at_ms"),
                    ("raw", "received_ms"),
                ):
                    removed += db.execute(
                        f"DELETE FROM {table} WHERE {column} < ?", (cutoff,)
                    ).rowcount
            row = db.execute("SELECT MAX(rowid) FROM events").fetchone()
            if row[0] is not None:
                removed += db.execute(
                    "DELETE FROM events WHERE rowid <= ?", (row[0] - self.max_events,)
                ).rowcount
                row = db.execute("SELECT MAX(rowid) FROM raw").fetchone()
                if row[0] is not None:
                    removed += db.execute(
                        "DELETE FROM raw WHERE rowid <= ?", (row[0] - self.max_events,)
                    ).rowcount
        return removed

    # --- searching ----------------------------------------------------------------------
