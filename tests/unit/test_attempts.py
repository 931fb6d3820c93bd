"""The attempt log's buffer: cheap, bounded, and it keeps what the bus refused."""

from __future__ import annotations

import msgspec
import pytest

from relay.attempts import Attempt, AttemptLog, decode_attempt, describe_failure
from relay.bus import BusError
from relay.bus.memory import MemoryBus


async def memory_bus() -> MemoryBus:
    bus = MemoryBus()
    await bus.start()
    return bus


def attempt(n: int) -> Attempt:
    return Attempt(
        event_id=f"ev-{n}",
        subscriber="crm",
        attempt=1,
        at_ms=n,
        duration_ms=1.0,
        outcome="delivered",
        status=200,
    )


async def test_flush_writes_one_record_per_attempt_keyed_by_event() -> None:
    bus = await memory_bus()
    log = AttemptLog(bus, "relay.attempts")
    for n in range(3):
        log.record(attempt(n))
    assert bus.records() == []  # recording never touches the bus
    assert await log.flush() == 3
    assert [r.key for r in bus.records()] == [b"ev-0", b"ev-1", b"ev-2"]
    assert {r.topic for r in bus.records()} == {"relay.attempts"}
    assert decode_attempt(bus.records()[1].value) == attempt(1)


async def test_the_buffer_is_bounded_dropping_the_oldest() -> None:
    bus = await memory_bus()
    log = AttemptLog(bus, "t", max_buffered=5)
    for n in range(7):
        log.record(attempt(n))
    await log.flush()
    assert [decode_attempt(r.value).event_id for r in bus.records()] == [
        f"ev-{n}" for n in range(2, 7)
    ]


async def test_a_refused_flush_keeps_the_attempts_in_order() -> None:
    bus = await memory_bus()
    log = AttemptLog(bus, "t")
    for n in range(3):
        log.record(attempt(n))
    bus.failure = BusError("down")
    with pytest.raises(BusError):
        await log.flush()
    log.record(attempt(3))
    bus.failure = None
    await log.flush()
    assert [msgspec.json.decode(r.value)["event_id"] for r in bus.records()] == [
        f"ev-{n}" for n in range(4)
    ]


async def test_close_flushes_what_is_left() -> None:
    bus = await memory_bus()
    log = AttemptLog(bus, "t")
    await log.start()
    log.record(attempt(1))
    await log.close()
    assert len(bus.records()) == 1


def test_failures_split_into_class_and_excerpt() -> None:
    assert describe_failure(500, "HTTP 500: upstream down") == (None, "upstream down")
    assert describe_failure(404, "HTTP 404") == (None, None)
    assert describe_failure(None, "ClientConnectorError: refused") == (
        "ClientConnectorError",
        "refused",
    )
    assert describe_failure(None, "TimeoutError") == ("TimeoutError", None)
    assert len(describe_failure(500, "HTTP 500: " + "x" * 5000)[1] or "") == 512
