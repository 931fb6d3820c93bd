"""The in-memory bus keeps the embedded log's promises: order, committed positions that
outlive a subscription, ``start_from``, bounded reads, and no write while it is away."""

from __future__ import annotations

import asyncio

import pytest

from relay.bus import BusError, Record
from relay.bus.memory import STREAM, MemoryBus


def record(topic: str, n: int) -> Record:
    return Record(topic=topic, value=f"v{n}".encode(), key=b"k", headers=(("h", b"1"),))


@pytest.fixture
async def bus() -> MemoryBus:
    bus = MemoryBus()
    await bus.start()
    return bus


async def test_a_subscription_reads_its_topics_in_order_with_shared_offsets(
    bus: MemoryBus,
) -> None:
    await bus.publish([record("a", 1), record("b", 2), record("a", 3)])
    reading = bus.subscribe("c", ["a"])
    await reading.start()
    items = await reading.fetch(10, 0)
    assert items is not None
    assert [(i.offset, i.value, i.stream) for i in items] == [
        (1, b"v1", STREAM),
        (3, b"v3", STREAM),
    ]
    assert items[0].headers == (("h", b"1"),) and items[0].key == b"k"
    assert await reading.fetch(10, 0) == []  # live: nothing more yet, not exhausted


async def test_max_records_is_honoured_and_the_rest_follows(bus: MemoryBus) -> None:
    await bus.publish([record("a", n) for n in range(5)])
    reading = bus.subscribe("c", ["a"])
    await reading.start()
    first = await reading.fetch(2, 0)
    rest = await reading.fetch(10, 0)
    assert first is not None and rest is not None
    assert [i.offset for i in first] == [1, 2] and [i.offset for i in rest] == [3, 4, 5]


async def test_a_commit_is_where_the_next_subscription_of_that_consumer_resumes(
    bus: MemoryBus,
) -> None:
    await bus.publish([record("a", n) for n in range(4)])
    first = bus.subscribe("c", ["a"])
    await first.start()
    await first.fetch(10, 0)
    await first.commit({STREAM: 3})  # finished offsets 1 and 2
    await first.close()
    again = bus.subscribe("c", ["a"])
    await again.start()
    items = await again.fetch(10, 0)
    assert items is not None and [i.offset for i in items] == [3, 4]
    other = bus.subscribe("d", ["a"])
    await other.start()
    others = await other.fetch(10, 0)
    assert others is not None and len(others) == 4  # positions are per consumer


async def test_latest_starts_after_what_is_there_and_keeps_that_start(bus: MemoryBus) -> None:
    await bus.publish([record("a", 1)])
    reading = bus.subscribe("c", ["a"], "latest")
    await reading.start()
    await bus.publish([record("a", 2)])
    again = bus.subscribe("c", ["a"], "latest")  # a restart before any commit
    await again.start()
    items = await again.fetch(10, 0)
    assert items is not None and [i.value for i in items] == [b"v2"]


async def test_a_bounded_read_stops_at_the_end_seen_at_start_and_commits_nothing(
    bus: MemoryBus,
) -> None:
    await bus.publish([record("a", 1), record("a", 2)])
    reading = bus.subscribe("c", ["a"], bounded=True)
    await reading.start()
    await bus.publish([record("a", 3)])
    items = await reading.fetch(10, 0)
    assert items is not None and [i.offset for i in items] == [1, 2]
    assert await reading.fetch(10, 0) is None
    await reading.commit({STREAM: 3})
    assert "c" not in bus.positions


async def test_a_waiting_fetch_wakes_when_a_record_arrives(bus: MemoryBus) -> None:
    reading = bus.subscribe("c", ["a"])
    await reading.start()
    fetching = asyncio.create_task(reading.fetch(10, 30))
    await asyncio.sleep(0)
    await bus.publish([record("a", 1)])
    items = await asyncio.wait_for(fetching, 5)
    assert items is not None and [i.value for i in items] == [b"v1"]


async def test_backlog_counts_what_was_not_fetched_on_its_topics(bus: MemoryBus) -> None:
    await bus.publish([record("a", 1), record("b", 2), record("a", 3)])
    reading = bus.subscribe("c", ["a"])
    await reading.start()
    assert await reading.backlog() == 2
    await reading.fetch(1, 0)
    assert await reading.backlog() == 1


async def test_a_failing_or_stopped_bus_keeps_nothing(bus: MemoryBus) -> None:
    bus.failure = BusError("away")
    with pytest.raises(BusError, match="away"):
        await bus.publish([record("a", 1)])
    bus.failure = None
    await bus.close()
    assert not bus.ready()
    with pytest.raises(BusError):
        await bus.publish([record("a", 1)])
    assert bus.records() == [] and bus.publishes == 0
