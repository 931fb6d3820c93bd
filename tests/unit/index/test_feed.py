"""The index's feed from the embedded log: records in offset order, and a close that never
pulls the connection from under a read still running on its thread (closing a SQLite
connection another thread is executing on crashes the process: ``sqlite3_last_insert_rowid``
on a closed handle, seen as segfaults of ``relay serve`` at SIGTERM)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from relay.bus import Item, Record
from relay.bus.embedded import EmbeddedLog
from relay.index.feed import EmbeddedFeed


async def _log_with(tmp_path: Path, count: int) -> None:
    log = EmbeddedLog(tmp_path)
    await log.start()
    try:
        await log.publish([Record(topic="relay.raw", value=f"v{n}".encode()) for n in range(count)])
    finally:
        await log.close()


async def test_fetch_reads_the_topics_in_offset_order_and_moves_on(tmp_path: Path) -> None:
    await _log_with(tmp_path, 3)
    feed = EmbeddedFeed(tmp_path, ["relay.raw"])
    await feed.start({})
    try:
        first = await feed.fetch()
        assert [item.value for item in first] == [b"v0", b"v1", b"v2"]
        assert [item.offset for item in first] == sorted(item.offset for item in first)
        assert await feed.fetch() == []
    finally:
        await feed.close()


async def test_close_waits_for_a_read_left_running_by_a_cancelled_fetch(tmp_path: Path) -> None:
    await _log_with(tmp_path, 1)
    feed = EmbeddedFeed(tmp_path, ["relay.raw"])
    await feed.start({})
    reading, release = threading.Event(), threading.Event()
    read = feed._read
    connection_open_after_read: list[bool] = []

    def slow_read() -> list[Item]:
        reading.set()
        release.wait(10)
        items = read()
        connection_open_after_read.append(feed._conn is not None)
        return items

    feed._read = slow_read  # type: ignore[method-assign]
    fetch = asyncio.create_task(feed.fetch())
    await asyncio.to_thread(reading.wait, 10)
    fetch.cancel()  # the indexer's task cancelled at shutdown, its read still on the thread
    closing = asyncio.create_task(feed.close())
    await asyncio.sleep(0.2)
    assert not closing.done(), "close() went ahead while a read was using the connection"
    release.set()
    await asyncio.wait_for(closing, 10)
    assert connection_open_after_read == [True]
    assert feed._conn is None
