"""What a bus ``Subscription`` (relay.bus.base) promises, kept by each implementation: the
same scenario runs against the embedded log's and the memory bus's (real SQLite files
under tmp_path for the embedded one)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from relay.bus import (
    Bus,
    FromOffset,
    PublishProbe,
    RangeStart,
    Record,
    Since,
    StartFrom,
    Subscription,
)
from relay.bus.embedded import (
    STREAM,
    EmbeddedLog,
    EmbeddedSubscription,
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


def test_a_range_starts_at_a_time_or_at_an_offset_of_0_or_more() -> None:
    starts: list[RangeStart] = [Since(1714651200000), FromOffset(0), FromOffset(7)]
    assert [s.ms if isinstance(s, Since) else s.offset for s in starts] == [1714651200000, 0, 7]
    assert Since(5) != FromOffset(5)  # the kind is part of the value
    with pytest.raises(ValueError, match=r"^an offset must be 0 or more \(got -1\)$"):
        FromOffset(-1)


async def test_publishing_nothing_tells_a_traced_caller_nothing(
    bus_and_subscribe: tuple[Bus, Subscribe],
) -> None:
    bus, _ = bus_and_subscribe
    probe = PublishProbe()
    await bus.publish([], probe)
    # the tracer reads these: no placement, no wait for a batch, not spooled
    assert (probe.placed, probe.sent_at, probe.spooled) == ([], None, False)
