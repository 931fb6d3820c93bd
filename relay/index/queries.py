"""Searching the index: events newest first by a cursor, attempts, dead letters, stats."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Any

from relay.events import EVENT_TYPES
from relay.index.model import (
    _ATTEMPT_COLUMNS,
    _DL_COLUMNS,
    _DL_FIELDS,
    _EVENT_COLUMNS,
    _EVENT_FIELDS,
    MAX_LIMIT,
    AttemptRow,
    Base,
    DeadLetterRow,
    EventRow,
    Filters,
    Page,
    RawRef,
    _attempt_row,
    _percentile,
)

_RAW_REF = 'SELECT partition, "offset", request_id, received_ms FROM raw '
_AT_OFFSET = 'WHERE partition = ? AND "offset" = ?'
_BY_DELIVERY = "WHERE delivery = ? ORDER BY received_ms LIMIT 1"
_NEAREST = "WHERE source = ? AND received_ms BETWEEN ? AND ? ORDER BY ABS(received_ms - ?) LIMIT 1"


class Queries(Base):
    def search(self, filters: Filters, limit: int = 50, cursor: str | None = None) -> Page:
        limit = max(1, min(limit, MAX_LIMIT))
        where: list[str] = []
        params: list[Any] = []
        if filters.key:
            where.append("key = ?")
            params.append(filters.key)
        if filters.phone:
            phone = filters.phone.strip()
            digits = phone.lstrip("+")
            if digits.isdigit():
                where.append("phone = ?")
                params.append("+" + digits)
            else:
                where.append("chat_id = ?")
                params.append(phone)
        if filters.source:
            where.append("+source = ?" if filters.key or filters.phone else "source = ?")
            params.append(filters.source.removeprefix("relay/"))
        if filters.since_ms is not None:
            where.append("time_ms >= ?")
            params.append(filters.since_ms)
        if filters.until_ms is not None:
            where.append("time_ms < ?")
            params.append(filters.until_ms)
        if cursor:
            try:
                time_part, rowid_part = cursor.split(".", 1)
                position = (int(time_part), int(rowid_part))
            except ValueError:
                raise ValueError(f"cursor: not a cursor this index made: {cursor!r}") from None
            where.append("(time_ms, rowid) < (?, ?)")
            params += list(position)
        # One ordered index range per type; a glob (``chat.message.*``) is the canonical types
        # it matches, each read newest first and merged here: never a scan of the table.
        types: list[str | None] = [None]
        if filters.type:
            pattern = filters.type
            types = (
                [t for t in EVENT_TYPES if fnmatchcase(t, pattern)]
                if any(c in pattern for c in "*?[")
                else [pattern]
            )
        rows: list[Any] = []
        with self._lock:
            db = self._db()
            for type_ in types:
                clauses, values = list(where), list(params)
                if type_ is not None:
                    # a conversation or a contact is the narrowest: its index leads (unary +
                    # keeps SQLite from walking the type's index instead)
                    clauses.append("+type = ?" if filters.key or filters.phone else "type = ?")
                    values.append(type_)
                query = f"SELECT {_EVENT_COLUMNS}, rowid FROM events"
                if clauses:
                    query += " WHERE " + " AND ".join(clauses)
                query += " ORDER BY time_ms DESC, rowid DESC LIMIT ?"
                rows += db.execute(query, [*values, limit + 1]).fetchall()
        if len(types) > 1:
            rows.sort(key=lambda row: (row[6], row[-1]), reverse=True)
            rows = rows[: limit + 1]
        more = len(rows) > limit
        rows = rows[:limit]
        events = [EventRow(**dict(zip(_EVENT_FIELDS, row[:-1], strict=True))) for row in rows]
        next_cursor = f"{rows[-1][6]}.{rows[-1][-1]}" if more and rows else None
        return Page(events, next_cursor)

    def event(self, event_id: str) -> EventRow | None:
        with self._lock:
            row = (
                self._db()
                .execute(f"SELECT {_EVENT_COLUMNS} FROM events WHERE id = ?", (event_id,))
                .fetchone()
            )
        return None if row is None else EventRow(**dict(zip(_EVENT_FIELDS, row, strict=True)))

    def raw_ref(self, event_id: str) -> RawRef | None:
        """Where the event's raw body is: see :class:`RawRef` for how sure that is."""
        with self._lock:
            db = self._db()
            row = db.execute(
                "SELECT source, delivery, stored_ms, raw_partition, raw_offset FROM events "
                "WHERE id = ?",
                (event_id,),
            ).fetchone()
            if row is None:
                return None
            source, delivery, stored_ms, raw_partition, raw_offset = row
            lookups = (
                ("adjacent", raw_offset is not None, _AT_OFFSET, (raw_partition, raw_offset)),
                ("delivery", delivery is not None, _BY_DELIVERY, (delivery,)),
                (
                    "nearest",
                    True,
                    _NEAREST,
                    (source, stored_ms - 5000, stored_ms + 1000, stored_ms),
                ),
            )
            for matched_by, usable, where, params in lookups:
                found = db.execute(_RAW_REF + where, params).fetchone() if usable else None
                if found is not None:
                    return RawRef(
                        topic=self.raw_topic,
                        partition=found[0],
                        offset=found[1],
                        request_id=found[2],
                        received_ms=found[3],
                        matched_by=matched_by,
                    )
        return None

    def attempts(self, event_id: str) -> list[AttemptRow]:
        with self._lock:
            rows = (
                self._db()
                .execute(
                    f"SELECT {_ATTEMPT_COLUMNS} FROM attempts WHERE event_id = ? "
                    "ORDER BY at_ms, attempt",
                    (event_id,),
                )
                .fetchall()
            )
        return [_attempt_row(row) for row in rows]

    def deadletters(
        self,
        *,
        event_id: str | None = None,
        subscriber: str | None = None,
        ids: Sequence[str] | None = None,
        since_ms: int | None = None,
        limit: int = 1000,
    ) -> list[DeadLetterRow]:
        """Newest first. Several filters combine (AND)."""
        where: list[str] = []
        params: list[Any] = []
        if event_id is not None:
            where.append("event_id = ?")
            params.append(event_id)
        if subscriber is not None:
            where.append("subscriber = ?")
            params.append(subscriber)
        if ids is not None:
            where.append(f"event_id IN ({','.join('?' for _ in ids)})")
            params += list(ids)
        if since_ms is not None:
            where.append("at_ms >= ?")
            params.append(since_ms)
        query = f"SELECT {_DL_COLUMNS} FROM deadletters"
        if where:
            query += " WHERE " + " AND ".join(where)
        query += " ORDER BY at_ms DESC, rowid DESC LIMIT ?"
        params.append(limit)
        with self._lock:
            rows = self._db().execute(query, params).fetchall()
        return [DeadLetterRow(**dict(zip(_DL_FIELDS, row, strict=True))) for row in rows]

    def redelivered(self, rows: Sequence[DeadLetterRow]) -> set[tuple[str, str]]:
        """(event id, subscriber) of these dead letters delivered after they were written."""
        found: set[tuple[str, str]] = set()
        with self._lock:
            db = self._db()
            for row in rows:
                if row.event_id is None or row.subscriber is None:
                    continue
                hit = db.execute(
                    "SELECT 1 FROM attempts WHERE event_id = ? AND subscriber = ? "
                    "AND outcome = 'delivered' AND at_ms >= ? LIMIT 1",
                    (row.event_id, row.subscriber, row.at_ms),
                ).fetchone()
                if hit is not None:
                    found.add((row.event_id, row.subscriber))
        return found

    def subscriber_stats(self, since_ms: int) -> dict[str, dict[str, Any]]:
        """Per subscriber since ``since_ms``: delivered/failed attempts, p50/p99 latency."""
        stats: dict[str, dict[str, Any]] = {}
        with self._lock:
            rows = (
                self._db()
                .execute(
                    "SELECT subscriber, outcome, duration_ms FROM attempts WHERE at_ms >= ?",
                    (since_ms,),
                )
                .fetchall()
            )
        durations: dict[str, list[float]] = {}
        for subscriber, outcome, duration in rows:
            entry = stats.setdefault(subscriber, {"delivered": 0, "failed": 0})
            entry["delivered" if outcome == "delivered" else "failed"] += 1
            durations.setdefault(subscriber, []).append(duration)
        for subscriber, values in durations.items():
            values.sort()
            stats[subscriber]["p50_ms"] = _percentile(values, 0.50)
            stats[subscriber]["p99_ms"] = _percentile(values, 0.99)
        return stats

    def sparkline(
        self, subscriber: str, since_ms: int, buckets: int, width_ms: int
    ) -> list[tuple[int, int]]:
        """(delivered, failed) attempts per bucket of ``width_ms``, oldest first."""
        series = [(0, 0)] * buckets
        with self._lock:
            rows = (
                self._db()
                .execute(
                    "SELECT (at_ms - ?) / ?, SUM(outcome = 'delivered'), "
                    "SUM(outcome != 'delivered') FROM attempts "
                    "WHERE subscriber = ? AND at_ms >= ? GROUP BY 1",
                    (since_ms, width_ms, subscriber, since_ms),
                )
                .fetchall()
            )
        for bucket, delivered, failed in rows:
            if 0 <= bucket < buckets:
                series[bucket] = (int(delivered), int(failed))
        return series

    def sources(self) -> dict[str, int]:
        """Last time each source's body was stored (epoch ms)."""
        with self._lock:
            rows = self._db().execute("SELECT source, MAX(received_ms) FROM raw GROUP BY source")
            return {source: int(last) for source, last in rows}

    def counts(self) -> dict[str, int]:
        with self._lock:
            db = self._db()
            return {
                table: int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
                for table in ("events", "attempts", "deadletters", "raw")
            }
