"""The embedded log's subscription: one deliverer per consumer (the others stand by), where
a bounded range starts. What every Subscription promises is in ``bus/test_base.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.bus import FromOffset, RangeStart, Record, Since, SubscriptionBusy
from relay.bus.embedded import EmbeddedLog, EmbeddedSubscription


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
