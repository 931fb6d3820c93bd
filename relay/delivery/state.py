"""What delivery keeps under ``data_dir`` besides the bus: start anchors, attempt counts,
disabled subscribers. One small SQLite file (``delivery.sqlite3``) shared by the roles.

- **anchors**: when a subscriber first ran (epoch ms). ``start_from: latest`` means "events
  published from then on", however long its consumer group takes to join; a restart never
  moves it.
- **attempts**: attempts made so far for events still being retried, so a restart in the
  middle of a backoff carries on counting instead of starting again at 1.
- **disabled**: subscribers an endpoint answered ``410 Gone``; stored with a fingerprint of
  the subscriber's configuration, so a changed configuration enables it again.

Every call is a short blocking transaction: callers on the event loop use ``asyncio.to_thread``.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import msgspec

from relay import units
from relay.config import Subscriber
from relay.sqlite import SQLiteFile
from relay.units import enc_hook

STATE_FILE = "delivery.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS anchors (
    subscriber TEXT PRIMARY KEY,
    started_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS attempts (
    subscriber TEXT NOT NULL,
    event_id TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (subscriber, event_id)
);
CREATE TABLE IF NOT EXISTS disabled (
    subscriber TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    status INTEGER,
    reason TEXT NOT NULL,
    at_ms INTEGER NOT NULL
);
"""


class Disabled(msgspec.Struct, frozen=True, kw_only=True):
    subscriber: str
    status: int | None
    reason: str
    at_ms: int


def fingerprint(subscriber: Subscriber) -> str:
    """Changes whenever anything in the subscriber's configuration changes."""
    return hashlib.sha256(msgspec.json.encode(subscriber, enc_hook=enc_hook)).hexdigest()[:32]


class DeliveryState(SQLiteFile):
    schema = _SCHEMA
    timeout = 10.0

    def __init__(self, data_dir: Path) -> None:
        super().__init__(Path(data_dir) / STATE_FILE)

    # --- anchors ----------------------------------------------------------------------

    def anchor(self, subscriber: str, at_ms: int | None = None) -> int:
        """The subscriber's first start, recorded now unless it was recorded before."""
        with self._lock:
            db = self._db()
            db.execute(
                "INSERT INTO anchors (subscriber, started_ms) VALUES (?, ?) "
                "ON CONFLICT(subscriber) DO NOTHING",
                (subscriber, units.now_ms() if at_ms is None else at_ms),
            )
            row = db.execute(
                "SELECT started_ms FROM anchors WHERE subscriber = ?", (subscriber,)
            ).fetchone()
            return int(row[0])

    def anchored(self, subscriber: str) -> int | None:
        with self._lock:
            row = (
                self._db()
                .execute("SELECT started_ms FROM anchors WHERE subscriber = ?", (subscriber,))
                .fetchone()
            )
            return None if row is None else int(row[0])

    # --- attempts ---------------------------------------------------------------------

    def attempts(self, subscriber: str) -> dict[str, int]:
        """Attempts recorded for this subscriber's events that are still being retried."""
        with self._lock:
            rows = (
                self._db()
                .execute(
                    "SELECT event_id, attempts FROM attempts WHERE subscriber = ?", (subscriber,)
                )
                .fetchall()
            )
            return {str(event_id): int(count) for event_id, count in rows}

    def record_attempts(self, subscriber: str, event_id: str, attempts: int) -> None:
        with self._lock:
            self._db().execute(
                "INSERT INTO attempts (subscriber, event_id, attempts, updated_ms) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(subscriber, event_id) DO UPDATE SET "
                "attempts = excluded.attempts, updated_ms = excluded.updated_ms",
                (subscriber, event_id, attempts, units.now_ms()),
            )

    def settle(self, subscriber: str, event_id: str) -> None:
        """The event reached its final outcome: its count is no longer needed."""
        with self._lock:
            self._db().execute(
                "DELETE FROM attempts WHERE subscriber = ? AND event_id = ?",
                (subscriber, event_id),
            )

    def forget_attempts_before(self, cutoff_ms: int) -> int:
        """Counts of events nobody retried since ``cutoff_ms`` (their records are gone)."""
        with self._lock:
            cursor = self._db().execute("DELETE FROM attempts WHERE updated_ms < ?", (cutoff_ms,))
            return cursor.rowcount

    # --- disabled ---------------------------------------------------------------------

    def disable(self, subscriber: Subscriber, status: int | None, reason: str) -> None:
        with self._lock:
            self._db().execute(
                "INSERT INTO disabled (subscriber, fingerprint, status, reason, at_ms) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(subscriber) DO UPDATE SET "
                "fingerprint = excluded.fingerprint, status = excluded.status, "
                "reason = excluded.reason, at_ms = excluded.at_ms",
                (subscriber.name, fingerprint(subscriber), status, reason, units.now_ms()),
            )

    def enable(self, subscriber: str) -> bool:
        """True when the subscriber was disabled."""
        with self._lock:
            cursor = self._db().execute("DELETE FROM disabled WHERE subscriber = ?", (subscriber,))
            return cursor.rowcount > 0

    def disabled(self, subscriber: Subscriber) -> Disabled | None:
        """Its disabled record, unless its configuration changed since (then it is cleared)."""
        with self._lock:
            db = self._db()
            row = db.execute(
                "SELECT fingerprint, status, reason, at_ms FROM disabled WHERE subscriber = ?",
                (subscriber.name,),
            ).fetchone()
            if row is None:
                return None
            if row[0] != fingerprint(subscriber):
                db.execute("DELETE FROM disabled WHERE subscriber = ?", (subscriber.name,))
                return None
            return Disabled(subscriber=subscriber.name, status=row[1], reason=row[2], at_ms=row[3])


def read_only_disabled(data_dir: Path, subscriber: Subscriber) -> Disabled | None:
    """For ``relay check``: the disabled record, without creating or changing anything."""
    path = Path(data_dir) / STATE_FILE
    if not path.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)
    except sqlite3.Error:
        return None
    try:
        row = conn.execute(
            "SELECT fingerprint, status, reason, at_ms FROM disabled WHERE subscriber = ?",
            (subscriber.name,),
        ).fetchone()
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    if row is None or row[0] != fingerprint(subscriber):
        return None
    return Disabled(subscriber=subscriber.name, status=row[1], reason=row[2], at_ms=row[3])
