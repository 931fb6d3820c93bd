"""202 ⇒ durable rests on SQLite settings: WAL and ``synchronous=FULL`` on every connection
that writes the embedded log or the spool (an fsync at each commit).

``kill -9`` cannot tell FULL from OFF (committed WAL pages survive in the OS page cache), and
power loss is not simulated here (see tests/README.md), so the settings themselves are
asserted, on the connections relay opens and uses.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from relay.bus.embedded import EmbeddedLog, connect
from relay.bus.kafka import KafkaBus
from relay.bus.spool import SpooledBus
from relay.config import parse
from tests.support import free_port

FULL = 2  # PRAGMA synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA


def assert_durable(conn: sqlite3.Connection) -> None:
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == FULL
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_connect_opens_wal_with_full_sync(tmp_path: Path) -> None:
    conn = connect(tmp_path / "log.sqlite3")
    try:
        assert_durable(conn)
    finally:
        conn.close()


async def test_the_embedded_logs_writer_syncs_every_commit(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path)
    await log.start()
    try:
        assert log._conn is not None  # the connection its writer thread commits on
        assert_durable(log._conn)
    finally:
        await log.close()


async def test_the_spools_writer_syncs_every_commit(tmp_path: Path) -> None:
    # no broker on that port: the spool takes every record, as in an outage
    config = parse(
        f'kafka: {{bootstrap_servers: "127.0.0.1:{free_port()}", idempotence: false}}', env={}
    )
    assert config.kafka is not None
    kafka = config.kafka
    bus = SpooledBus(lambda: KafkaBus(kafka), tmp_path, spool_after=0.2, max_bytes=1_000_000)
    await bus.start()
    try:
        assert bus.mode == "spooling"
        assert bus._spool._conn is not None
        assert_durable(bus._spool._conn)
    finally:
        await bus.close()
