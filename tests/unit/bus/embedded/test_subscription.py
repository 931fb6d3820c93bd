"""The embedded log's subscription: one deliverer per consumer (the others stand by), where
a bounded range starts. What every Subscription promises is in ``bus/test_base.py``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from relay.bus import FromOffset, RangeStart, Record, Since, SubscriptionBusy
from relay.bus.embedded import STREAM, EmbeddedLog, EmbeddedSubscription


async def test_one_embedded_reader_per_consumer_the_next_stands_by(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path)
    await log.start()
    first = EmbeddedSubscription(tmp_path, "c", ["a"], "earliest")
    await first.start()
    try:
        with pytest.raises(SubscriptionBusy):
            await EmbeddedSubscription(tmp_path, "c", ["a"], "earliest").start()
        other = EmbeddedSubscription(tmp_path, "d", ["a"], "earliest")
        await other.start()  # another consumer is not held back
        await other.close()
    finally:
        await first.close()
        await log.close()


async def test_a_range_starts_at_an_offset_or_at_the_first_record_written_that_late(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = EmbeddedLog(tmp_path)
    await log.start()
    for n, at_ms in enumerate((1000, 2000, 3000), 1):
        monkeypatch.setattr("relay.units.now_ms", lambda at_ms=at_ms: at_ms)  # the log's clock
        await log.publish([Record("a", f"v{n}".encode()), Record("b", f"b{n}".encode())])
    await log.close()

    async def read(start: RangeStart) -> list[bytes]:
        reading = EmbeddedSubscription(
            tmp_path, "r", ["a"], "earliest", range_start=start, bounded=True
        )
        await reading.start()
        try:
            return [item.value for item in await reading.fetch(100, 0) or []]
        finally:
            await reading.close()

    assert await read(FromOffset(0)) == [b"v1", b"v2", b"v3"]
    assert await read(FromOffset(3)) == [b"v2", b"v3"]  # the log's offsets: v2 is the third
    assert await read(FromOffset(99)) == []
    assert await read(Since(2000)) == [b"v2", b"v3"]  # at or after
    assert await read(Since(1500)) == [b"v2", b"v3"]
    assert await read(Since(0)) == [b"v1", b"v2", b"v3"]
    assert await read(Since(3001)) == []  # nothing that late: the end


def rec(topic: str, n: int) -> Record:
    return Record(topic=topic, value=b"v%d" % n)


async def values(reading: EmbeddedSubscription) -> list[bytes] | None:
    items = await reading.fetch(100, 0)
    return None if items is None else [item.value for item in items]


async def test_a_closed_reader_frees_its_consumer_and_a_bounded_read_never_holds_it(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "new" / "dir"  # made on start
    first = EmbeddedSubscription(data_dir, "c", ["a"], "earliest")
    await first.start()
    bounded = EmbeddedSubscription(data_dir, "c", ["a"], "earliest", bounded=True)
    await bounded.start()  # a replay beside the live reader
    assert await values(bounded) is None
    await bounded.close()
    await first.close()
    assert await first.backlog() == 0  # closed: nothing to count
    again = EmbeddedSubscription(data_dir, "c", ["a"], "earliest")
    await again.start()
    await again.close()


async def test_start_positions_when_nothing_matches_and_from_offset_zero(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path)
    await log.start()
    try:
        await log.publish([rec("a", 1), rec("a", 2)])
        later = int(time.time() * 1000) + 60_000
        # latest anchored after everything, and a range since after everything: the end
        anchored = EmbeddedSubscription(tmp_path, "x", ["a"], "latest", anchor_ms=later)
        since = EmbeddedSubscription(tmp_path, "y", ["a"], "earliest", range_start=Since(later))
        everything = EmbeddedSubscription(
            tmp_path, "z", ["a"], "latest", range_start=FromOffset(0), bounded=True
        )
        for reading in (anchored, since, everything):
            await reading.start()
        assert await values(everything) == [b"v1", b"v2"]
        await log.publish([rec("a", 3)])
        assert await values(anchored) == [b"v3"]
        assert await values(since) == [b"v3"]
        for reading in (anchored, since, everything):
            await reading.close()
    finally:
        await log.close()


async def test_a_commit_without_the_stream_keeps_the_stored_position(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path)
    await log.start()
    try:
        await log.publish([rec("a", 1), rec("a", 2)])
        reading = EmbeddedSubscription(tmp_path, "c", ["a"], "earliest")
        await reading.start()
        items = await reading.fetch(1, 0)
        assert items is not None
        await reading.commit({STREAM: items[0].offset + 1})
        await reading.commit({("t", 0, 0): 99})  # not the embedded log's stream
        await reading.close()
        again = EmbeddedSubscription(tmp_path, "c", ["a"], "earliest")
        await again.start()
        assert await values(again) == [b"v2"]
        await again.close()
    finally:
        await log.close()
