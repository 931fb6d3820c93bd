"""The embedded log's subscription: one deliverer per consumer (the others stand by), where
a bounded range starts. What every Subscription promises is in ``bus/test_base.py``."""

from __future__ import annotations

import sqlite3
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


async def test_a_busy_consumer_is_named_in_the_refusal(tmp_path: Path) -> None:
    first = EmbeddedSubscription(tmp_path, "c", ["a"], "earliest")
    await first.start()
    try:
        with pytest.raises(SubscriptionBusy) as refused:
            await EmbeddedSubscription(tmp_path, "c", ["a"], "earliest").start()
        assert str(refused.value) == (
            f"another process delivers for c from {tmp_path / 'log.sqlite3'}"
        )
    finally:
        await first.close()


async def test_ranges_count_offsets_across_topics_and_stop_at_the_end_seen_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = EmbeddedLog(tmp_path)
    await log.start()
    try:
        for n, at_ms in enumerate((1000, 2000), 1):
            monkeypatch.setattr("relay.units.now_ms", lambda at_ms=at_ms: at_ms)
            await log.publish([rec("a", n), rec("b", n)])  # offsets: a1 1, b1 2, a2 3, b2 4

        async def started(start: RangeStart) -> EmbeddedSubscription:
            reading = EmbeddedSubscription(
                tmp_path, "r", ["a", "b"], "earliest", range_start=start, bounded=True
            )
            await reading.start()
            return reading

        from_two, since = await started(FromOffset(2)), await started(Since(2000))
        await log.publish([rec("a", 3)])  # after the ranges started: outside them
        assert await values(from_two) == [b"v1", b"v2", b"v2"]  # b1, a2, b2
        assert await values(since) == [b"v2", b"v2"]  # a2, b2: not b1 just before
        for reading in (from_two, since):
            assert await values(reading) is None  # the end
            await reading.close()
    finally:
        await log.close()


async def test_a_live_reader_reads_on_from_where_it_is_and_waits_briefly_when_idle(
    tmp_path: Path,
) -> None:
    log = EmbeddedLog(tmp_path)
    await log.start()
    try:
        await log.publish([rec("a", 1), rec("a", 2)])
        reading = EmbeddedSubscription(tmp_path, "c", ["a"], "earliest")
        await reading.start()
        assert [i.value for i in await reading.fetch(1, 0) or []] == [b"v1"]
        assert [i.value for i in await reading.fetch(1, 0) or []] == [b"v2"]
        assert await reading.fetch(10, 5.0) == []  # nothing: an empty answer, not the end
        await reading.close()
        await reading.close()  # a second close is a no-op
    finally:
        await log.close()


async def test_latest_starts_at_the_end_and_a_live_reader_keeps_that_start_but_a_range_not(
    tmp_path: Path,
) -> None:
    log = EmbeddedLog(tmp_path)
    await log.start()
    try:
        await log.publish([rec("a", 1)])
        bounded = EmbeddedSubscription(tmp_path, "c", ["a"], "earliest", bounded=True)
        await bounded.start()  # a bounded read stores no position for "c"
        await bounded.close()
        live = EmbeddedSubscription(tmp_path, "c", ["a"], "latest")
        await live.start()  # at the end, stored at once
        await live.close()
        await log.publish([rec("a", 2)])
        again = EmbeddedSubscription(tmp_path, "c", ["a"], "latest")
        await again.start()  # resumes from the stored start, not the new end
        assert await values(again) == [b"v2"]
        await again.close()
    finally:
        await log.close()


async def test_the_backlog_counts_what_is_after_the_position_on_its_topics(
    tmp_path: Path,
) -> None:
    log = EmbeddedLog(tmp_path)
    await log.start()
    try:
        await log.publish([rec("a", 1), rec("b", 2), rec("c", 3), rec("a", 4)])
        reading = EmbeddedSubscription(tmp_path, "c", ["a", "b"], "earliest")
        await reading.start()
        assert await reading.backlog() == 3  # not topic c
        await reading.fetch(1, 0)
        assert await reading.backlog() == 2
        await reading.close()
        assert await reading.backlog() == 0  # closed: its connection is gone
    finally:
        await log.close()


async def test_a_subscription_never_started_closes(tmp_path: Path) -> None:
    await EmbeddedSubscription(tmp_path, "c", ["a"], "earliest").close()


async def test_a_commit_the_database_refuses_is_not_the_callers_failure(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path)
    await log.start()
    try:
        await log.publish([rec("a", 1)])
        reading = EmbeddedSubscription(tmp_path, "c", ["a"], "earliest")
        await reading.start()
        other = sqlite3.connect(tmp_path / "log.sqlite3")
        other.execute("DROP TABLE consumer_offsets")  # the next commit fails in SQLite
        other.close()
        await reading.commit({STREAM: 2})  # kept in memory; the next commit tries again
        assert await values(reading) == [b"v1"]
        await reading.close()
    finally:
        await log.close()
