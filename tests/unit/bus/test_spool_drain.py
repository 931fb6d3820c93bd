"""The spool's drain and bookkeeping, from its mutation check (tests/README.md, "Mutation
check"), on real files in front of the stand-in broker of test_spool.py: a drained record
keeps its key and headers, another worker's spool left behind is adopted and drained, the
byte bound is exact, a failed spool write counts nothing, and the mode changes are logged."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from relay.bus import BusError, PublishProbe, Record
from relay.bus.embedded import read
from relay.bus.spool import SpooledBus, _size
from tests.support import poll_until
from tests.unit.bus.test_spool import Broker, broker, spooled

__all__ = ["broker"]  # the fixture, shared with test_spool.py


def keyed(n: int, key: bytes | None = b"conv-1") -> Record:
    return Record(topic="events", value=b"event %d" % n, key=key, headers=(("n", b"%d" % n),))


def claiming(broker: Broker, tmp_path: Path) -> SpooledBus:
    return SpooledBus(
        lambda: broker, tmp_path, spool_after=1.0, max_bytes=1_000_000, claim_base="spool"
    )


async def test_drained_records_keep_their_key_and_headers_and_the_drain_is_logged(
    broker: Broker, tmp_path: Path
) -> None:
    bus = spooled(broker, tmp_path)
    await bus.start()
    try:
        broker.down = True
        with capture_logs() as logs:
            await bus.publish([keyed(1), keyed(2, key=None)])
            broker.down = False
            await poll_until(lambda: bus.mode == "direct", what="the spool drained")
        drained = read(broker.path, "events")
        assert [(r.value, r.key, r.headers) for r in drained] == [
            (b"event 1", b"conv-1", (("n", b"1"),)),
            (b"event 2", None, (("n", b"2"),)),
        ]
        events = [(e["event"], e.get("reason")) for e in logs if "waiting" not in e["event"]]
        assert events[0] == ("kafka_unavailable_spooling", "broker away")
        assert ("spool_drained", None) in events
        assert events[-1] == ("kafka_recovered_direct", "the spool is drained")
        [drain] = [e for e in logs if e["event"] == "spool_drained"]
        assert (drain["records"], drain["left"]) == (2, 0)
    finally:
        await bus.close()


async def two_workers(data_dir: Path) -> tuple[SpooledBus, SpooledBus]:
    """Two processes' spools on one data_dir, each with its own producer; the second's
    broker is away."""
    away = Broker(data_dir)
    away.down = True
    first, second = claiming(Broker(data_dir), data_dir), claiming(away, data_dir)
    await first.start()
    await second.start()  # the next free file
    return first, second


async def test_a_spool_left_by_another_worker_is_adopted_and_drained_oldest_first(
    broker: Broker, tmp_path: Path
) -> None:
    first, second = await two_workers(tmp_path)
    assert (first.path.name, second.path.name) == ("spool.sqlite3", "spool-1.sqlite3")
    await second.publish([keyed(n) for n in range(1, 4)])  # its broker is away
    await second.close()  # that worker is gone for good (workers lowered)
    await first.close()
    again = claiming(broker, tmp_path)
    with capture_logs() as logs:
        await again.start()  # takes spool.sqlite3, finds spool-1.sqlite3 left with records
        try:
            await poll_until(lambda: read(tmp_path / "spool-1.sqlite3") == [], what="adopted")
            await poll_until(
                lambda: any(e["event"] == "spool_adopted_drained" for e in logs), what="released"
            )
            drained = read(broker.path, "events")
            assert [(r.value, r.key, r.headers) for r in drained] == [
                (b"event %d" % n, b"conv-1", (("n", b"%d" % n),)) for n in range(1, 4)
            ]
            adopted = [e for e in logs if e["event"].startswith("spool_adopted")]
            assert [(e["event"], e["file"]) for e in adopted] == [
                ("spool_adopted", "spool-1.sqlite3"),
                ("spool_adopted_drained", "spool-1.sqlite3"),
            ]
            # released: the next worker to start may take that file
            other = claiming(Broker(tmp_path), tmp_path)  # a producer of its own
            await other.start()
            assert other.path.name == "spool-1.sqlite3"
            await other.close()
        finally:
            await again.close()


async def test_an_adopted_spool_waits_for_the_broker_and_then_drains(
    broker: Broker, tmp_path: Path
) -> None:
    first, second = await two_workers(tmp_path)
    await second.publish([keyed(1), keyed(2)])
    await second.close()
    await first.close()
    broker.down = True
    again = claiming(broker, tmp_path)
    with capture_logs() as logs:
        await again.start()
        try:
            await poll_until(
                lambda: any(e["event"] == "spool_adoption_waiting" for e in logs), what="waiting"
            )
            waiting = [e for e in logs if e["event"] == "spool_adoption_waiting"]
            assert {e["file"] for e in waiting} == {"spool-1.sqlite3"}
            # before our producer is connected, then while its broker is away
            assert {e["error"] for e in waiting} <= {"not connected to Kafka", "broker away"}
            assert len(read(tmp_path / "spool-1.sqlite3")) == 2  # nothing lost while waiting
            broker.down = False
            await poll_until(lambda: read(tmp_path / "spool-1.sqlite3") == [], what="adopted")
            assert [r.value for r in read(broker.path, "events")] == [b"event 1", b"event 2"]
        finally:
            await again.close()


async def test_the_spool_holds_exactly_max_bytes_counting_a_missing_key_as_nothing(
    broker: Broker, tmp_path: Path
) -> None:
    one, two = keyed(1, key=None), keyed(2, key=None)
    bus = spooled(broker, tmp_path, max_bytes=_size(one) + _size(two))
    assert _size(one) == len(b"event 1") + len("n") + len(b"1")
    await bus.start()
    broker.down = True
    try:
        await bus.publish([one])
        probe = PublishProbe()
        await bus.publish([two], probe)  # exactly full: still kept
        assert probe.spooled and probe.sent_at is not None  # the spool's commit, traced
        assert (bus.spooled_records, bus.spooled_bytes) == (2, bus.max_bytes)
        with pytest.raises(BusError, match="spool is full"):
            await bus.publish([keyed(3, key=None)])
        assert (bus.spooled_records, bus.spooled_bytes) == (2, bus.max_bytes)
    finally:
        await bus.close()


async def test_a_spool_write_that_fails_counts_nothing(broker: Broker, tmp_path: Path) -> None:
    bus = spooled(broker, tmp_path)
    await bus.start()
    broker.down = True
    try:
        await bus.publish([keyed(1)])
        counted = (bus.spooled_records, bus.spooled_bytes)
        await bus._spool.close()  # the spool's disk went away under it
        with pytest.raises(BusError):
            await bus.publish([keyed(2), keyed(3)])
        assert (bus.spooled_records, bus.spooled_bytes) == counted
    finally:
        await bus.close()


async def test_the_counts_fall_as_the_spool_drains_in_batches(
    broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("relay.bus.spool._DRAIN_BATCH", 2)
    bus = spooled(broker, tmp_path)
    await bus.start()
    broker.down = True
    try:
        await bus.publish([keyed(n) for n in range(1, 6)])
        size = sum(_size(keyed(n)) for n in range(1, 6))
        assert (bus.spooled_records, bus.spooled_bytes) == (5, size)
        with capture_logs() as logs:
            broker.down = False
            await poll_until(lambda: bus.mode == "direct", what="the spool drained")
        drains = [(e["records"], e["left"]) for e in logs if e["event"] == "spool_drained"]
        assert drains == [(2, 3), (2, 1), (1, 0)]
        assert [r.value for r in read(broker.path, "events")] == [
            b"event %d" % n for n in range(1, 6)
        ]
    finally:
        await bus.close()
