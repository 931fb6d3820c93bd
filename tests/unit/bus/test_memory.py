"""The in-memory bus keeps the embedded log's promises: order, committed positions that
outlive a subscription, ``start_from``, bounded reads, and no write while it is away."""

from __future__ import annotations

import asyncio
import time

import pytest

from relay.bus import BusError, Item, PublishProbe, Record
from relay.bus.memory import STREAM, GivenItems, MemoryBus, MemorySubscription


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


async def test_given_items_come_out_in_order_in_batches_then_end() -> None:
    items = [Item(("redrive", 0, 0), n, "t", None, f"v{n}".encode(), (), 0) for n in range(5)]
    given = GivenItems(items)
    await given.start()
    assert await given.fetch(2, 0) == items[:2]
    assert await given.backlog() == 3
    assert await given.fetch(10, 0) == items[2:]
    assert await given.fetch(10, 0) is None
    await given.commit({STREAM: 5})  # nothing to commit to: a no-op
    await given.close()


async def test_a_new_bus_is_not_ready_and_refuses_until_started() -> None:
    bus = MemoryBus()
    assert bus.ready() is False
    with pytest.raises(BusError, match=r"^the memory bus is not running$"):
        await bus.publish([record("a", 1)])
    await bus.start()
    assert bus.ready() is True
    await bus.close()
    assert bus.ready() is False


async def test_each_write_is_counted_stamped_and_probed(bus: MemoryBus) -> None:
    await bus.publish([])  # nothing to keep: not a bus write
    probe = PublishProbe()
    before_ms, before = time.time() * 1000, time.monotonic()
    await bus.publish([record("a", 1), record("a", 2)], probe)
    await bus.publish([record("a", 3)])
    after_ms, after = time.time() * 1000, time.monotonic()
    assert bus.publishes == 2
    assert probe.sent_at is not None and before <= probe.sent_at <= after
    assert all(before_ms - 1 <= item.timestamp_ms <= after_ms for item in bus.items)


async def test_records_are_filtered_by_topic(bus: MemoryBus) -> None:
    await bus.publish([record("a", 1), record("b", 2), record("a", 3)])
    assert [i.value for i in bus.records("a")] == [b"v1", b"v3"]
    assert [i.value for i in bus.records("b")] == [b"v2"]
    assert [i.value for i in bus.records()] == [b"v1", b"v2", b"v3"]


async def test_a_subscription_tells_whether_it_was_started_and_closed(bus: MemoryBus) -> None:
    reading = MemorySubscription(bus, "c", ["a"], "earliest")  # live unless told bounded
    assert (reading.bounded, reading.started, reading.closed) == (False, False, False)
    await reading.start()
    assert (reading.started, reading.closed) == (True, False)
    await reading.close()
    assert reading.closed is True


async def test_a_fetch_with_records_waiting_returns_them_without_waiting(bus: MemoryBus) -> None:
    await bus.publish([record("a", 1)])
    reading = bus.subscribe("c", ["a"])
    await reading.start()
    # a long wait would only be spent when nothing is there; the bound guards a hang
    items = await asyncio.wait_for(reading.fetch(10, 60), 30)
    assert items is not None and [i.value for i in items] == [b"v1"]


async def test_a_woken_fetch_still_honours_max_records(bus: MemoryBus) -> None:
    reading = bus.subscribe("c", ["a"])
    await reading.start()
    fetching = asyncio.create_task(reading.fetch(1, 30))
    await asyncio.sleep(0)
    await bus.publish([record("a", n) for n in range(3)])
    items = await asyncio.wait_for(fetching, 5)
    assert items is not None and [i.value for i in items] == [b"v0"]


async def test_an_exhausted_bounded_read_has_no_backlog(bus: MemoryBus) -> None:
    await bus.publish([record("a", 1), record("a", 2)])
    reading = bus.subscribe("r", ["a"], bounded=True)
    await reading.start()
    assert await reading.fetch(10, 0) is not None
    assert await reading.fetch(10, 0) is None
    assert await reading.backlog() == 0
    assert await reading.fetch(10, 0) is None  # and stays exhausted
