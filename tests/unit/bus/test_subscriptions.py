"""The embedded log's subscription and the memory bus's keep the same promises: the same
scenario runs against both (real SQLite files under tmp_path for the embedded one)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from relay.bus import Bus, Record, StartFrom, Subscription, SubscriptionBusy
from relay.bus.embedded import (
    LOG_FILE,
    STREAM,
    EmbeddedLog,
    EmbeddedSubscription,
    delete_through,
    depth,
    offset_before_last,
    read,
    read_at,
)
from relay.bus.memory import MemoryBus

Subscribe = Callable[[str, list[str], StartFrom, bool], Subscription]


@pytest.fixture(params=["embedded", "memory"])
async def bus_and_subscribe(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Bus, Subscribe]]:
    if request.param == "embedded":
        log = EmbeddedLog(tmp_path)
        await log.start()

        def embedded(name: str, topics: list[str], start: StartFrom, bounded: bool) -> Subscription:
            return EmbeddedSubscription(tmp_path, name, topics, start, bounded=bounded)

        yield log, embedded
        await log.close()
    else:
        memory = MemoryBus()
        await memory.start()

        def in_memory(
            name: str, topics: list[str], start: StartFrom, bounded: bool
        ) -> Subscription:
            return memory.subscribe(name, topics, start, bounded=bounded)

        yield memory, in_memory


def record(topic: str, n: int) -> Record:
    return Record(topic=topic, value=f"v{n}".encode(), key=f"k{n}".encode(), headers=(("h", b"x"),))


async def values(reading: Subscription, max_records: int = 100) -> list[bytes] | None:
    items = await reading.fetch(max_records, 0)
    return None if items is None else [item.value for item in items]


async def test_both_resume_after_the_commit_and_start_from_the_same_places(
    bus_and_subscribe: tuple[Bus, Subscribe],
) -> None:
    bus, subscribe = bus_and_subscribe
    await bus.publish([record("a", 1), record("b", 2), record("a", 3)])
    first = subscribe("c", ["a"], "earliest", False)
    latest = subscribe("l", ["a"], "latest", False)
    await first.start()
    await latest.start()
    items = await first.fetch(1, 0)
    assert items is not None and [(i.offset, i.stream, i.key) for i in items] == [
        (1, STREAM, b"k1")
    ]
    assert await first.backlog() == 1
    await first.commit({STREAM: items[0].offset + 1})
    await first.close()
    await bus.publish([record("a", 4)])
    again = subscribe("c", ["a"], "earliest", False)
    await again.start()
    assert await values(again) == [b"v3", b"v4"]
    assert await values(latest) == [b"v4"]  # started after what was there
    assert await values(again) == []  # live: nothing yet, not the end
    for reading in (again, latest):
        await reading.close()


async def test_both_bound_a_range_at_the_end_seen_at_start_and_commit_nothing(
    bus_and_subscribe: tuple[Bus, Subscribe],
) -> None:
    bus, subscribe = bus_and_subscribe
    await bus.publish([record("a", 1), record("a", 2)])
    bounded = subscribe("r", ["a"], "earliest", True)
    await bounded.start()
    await bus.publish([record("a", 3)])
    assert await values(bounded) == [b"v1", b"v2"]
    assert await values(bounded) is None
    await bounded.commit({STREAM: 3})
    await bounded.close()
    live = subscribe("r", ["a"], "earliest", False)  # the bounded read stored no position
    await live.start()
    assert await values(live) == [b"v1", b"v2", b"v3"]
    await live.close()


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


async def test_the_embedded_logs_helpers_read_count_and_delete(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path)
    await log.start()
    try:
        await log.publish([record("a", n) for n in range(1, 5)] + [record("b", 5)])
    finally:
        await log.close()
    path = tmp_path / LOG_FILE
    assert [i.offset for i in read(path, "a", after=1, limit=2)] == [2, 3]
    assert [i.topic for i in read(path)] == ["a", "a", "a", "a", "b"]
    assert offset_before_last(path, "a", 2) == 2  # the last two of "a" start after offset 2
    assert offset_before_last(path, "a", 10) == 0
    [three, gone] = read_at(path, [3, 99])
    assert three is not None and three.value == b"v3" and gone is None
    count, size = depth(path)
    assert count == 5 and size > 5 * 4
    delete_through(path, 3)
    assert [i.offset for i in read(path)] == [4, 5]
    assert depth(path)[0] == 2
