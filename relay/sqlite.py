"""One SQLite file of relay's own (delivery state, the admin index): WAL, opened on first use.

The connection is shared by threads (``check_same_thread=False``), so every use holds
``_lock``; autocommit (``isolation_level=None``), so a write is durable when it returns,
at the ``synchronous`` level the file asks for.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import ClassVar, Literal


class SQLiteFile:
    schema: ClassVar[str]
    """Run on every open (``CREATE TABLE IF NOT EXISTS ...``)."""
    synchronous: ClassVar[Literal["FULL", "NORMAL"]] = "FULL"
    timeout: ClassVar[float] = 5.0
    """How long a write waits for another connection's lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.executescript(self.schema)
            self._conn = conn
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
