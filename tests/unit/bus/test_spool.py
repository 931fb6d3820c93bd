"""The spool on real files, in front of a stand-in broker that can be taken away: accept
while it is away, drain oldest first, never spool what Kafka would refuse forever, refuse
(503) past the spool's size. ``tests/integration/test_spool.py`` does the same against a
paused Tansu broker."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from relay.bus import Bus, BusError, PublishProbe, Record
from relay.bus.base import RecordTooLarge
from relay.bus.embedded import EmbeddedLog, read
from relay.bus.kafka import KafkaBus
from relay.bus.spool import SpooledBus, _size
from relay.config import parse
from relay.metrics import LIVE
from tests.support import assert_durable, free_port, poll_until


class Broker(EmbeddedLog):
    """A durable log standing in for Kafka, that refuses every write while ``down``, each
    connection while ``unreachable``, and the next writes as ``answers`` says (an error's
    text, or ``None`` to take it)."""

    name = "kafka"

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, "broker.sqlite3")
        self.down = False
        self.unreachable = False
        self.answers: list[str | None] = []
        self.batches: list[int] = []  # the size of each write taken
        self.watch: Callable[[], object] | None = None  # looked at before each write taken
        self.watched: list[object] = []
        self.close_failures = 0  # how many of the next closes fail (after closing)

    async def close(self) -> None:
        await super().close()
        if self.close_failures:
            self.close_failures -= 1
            raise BusError("close failed")

    async def start(self) -> None:
        if self.unreachable:
            raise BusError("broker away")
        await super().start()

    async def publish(self, records: Sequence[Record], probe: PublishProbe | None = None) -> None:
        if self.down:
            raise BusError("broker away")
        if self.answers and (error := self.answers.pop(0)) is not None:
            raise BusError(error)
        if self.watch is not None:
            self.watched.append(self.watch())
        await super().publish(records, probe)
        self.batches.append(len(records))


def record(n: int, size: int = 0) -> Record:
    return Record(topic="events", value=f"event {n}".encode() + b"x" * size, key=b"conv-1")


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[Broker]:
    log = Broker(tmp_path)
    yield log
    await log.close()


def spooled(broker: Broker, tmp_path: Path, **options: int) -> SpooledBus:
    return SpooledBus(
        lambda: broker,
        tmp_path,
        spool_after=1.0,
        max_bytes=options.get("max_bytes", 1_000_000),
        max_record_bytes=options.get("max_record_bytes", 1_000_000),
    )


def values(broker: Broker) -> list[bytes]:
    return [r.value for r in read(broker.path, "events")]


async def test_up_writes_go_straight_to_the_broker(broker: Broker, tmp_path: Path) -> None:
    bus = spooled(broker, tmp_path)
    await bus.start()
    try:
        await bus.publish([record(0), record(1)])
        assert bus.mode == "direct" and values(broker) == [b"event 0", b"event 1"]
        assert read(bus.path) == []
    finally:
        await bus.close()


async def test_while_the_broker_is_away_writes_are_spooled_then_drained_oldest_first(
    broker: Broker, tmp_path: Path
) -> None:
    bus = spooled(broker, tmp_path)
    await bus.start()
    try:
        await bus.publish([record(0)])
        broker.down = True
        for n in range(1, 21):  # one conversation: its order must survive the outage
            await bus.publish([record(n)])
        assert bus.mode == "spooling" and bus.spooled_records == 20
        assert [r.value for r in read(bus.path)] == [f"event {n}".encode() for n in range(1, 21)]
        broker.down = False
        await poll_until(lambda: bus.mode == "direct", what="the spool drained")
        assert values(broker) == [f"event {n}".encode() for n in range(21)]
        assert read(bus.path) == [] and (bus.spooled_records, bus.spooled_bytes) == (0, 0)
    finally:
        await bus.close()


async def test_a_record_kafka_would_refuse_is_never_spooled(broker: Broker, tmp_path: Path) -> None:
    bus = spooled(broker, tmp_path, max_record_bytes=100)
    await bus.start()
    broker.down = True
    try:
        too_large = r"^a 113-byte record for events is over kafka.max_record_bytes \(100\)$"
        with pytest.raises(RecordTooLarge, match=too_large):
            await bus.publish([record(0), record(1, size=100)])
        assert read(bus.path) == [] and bus.mode == "direct"  # nothing of that batch kept
    finally:
        await bus.close()


async def test_a_full_spool_refuses_and_is_not_ready_until_drained(
    broker: Broker, tmp_path: Path
) -> None:
    bus = spooled(broker, tmp_path, max_bytes=240)  # two records of 113 bytes fit
    await bus.start()
    broker.down = True
    try:
        await bus.publish([record(0, size=100)])
        await bus.publish([record(1, size=100)])
        with pytest.raises(BusError, match="spool is full"):
            await bus.publish([record(2, size=100)])
        # not ready while the spool is over 90 % full; the refused record was not kept
        assert not bus.ready() and bus.spooled_records == 2
        counted, bus.spooled_bytes = bus.spooled_bytes, 216  # exactly 90 % of 240: still full
        assert not bus.ready()
        bus.spooled_bytes = 215
        assert bus.ready()  # below 90 %: taking requests again
        bus.spooled_bytes = counted
        broker.down = False
        await poll_until(lambda: bus.mode == "direct", what="the spool drained")
        assert bus.ready()
        assert [v[:7] for v in values(broker)] == [b"event 0", b"event 1"]
    finally:
        await bus.close()


async def test_a_spool_left_from_before_is_drained_first(broker: Broker, tmp_path: Path) -> None:
    first = spooled(broker, tmp_path)
    await first.start()
    broker.down = True
    await first.publish([record(0), record(1)])
    await first.close()  # relay stopped with the broker still away
    broker.down = False
    again = spooled(broker, tmp_path)
    with capture_logs() as logs:
        await again.start()
    try:
        assert again.mode == "spooling"  # older records wait in the spool: not direct yet
        assert (logs[0]["event"], logs[0]["reason"]) == (
            "kafka_unavailable_spooling",
            "records left in the spool at start-up",
        )
        await again.publish([record(2)])
        await poll_until(lambda: again.mode == "direct", what="the spool drained")
        assert values(broker) == [b"event 0", b"event 1", b"event 2"]
    finally:
        await again.close()


async def test_the_spools_writer_syncs_every_commit(tmp_path: Path) -> None:
    # no broker on that port: the spool takes every record, as in an outage
    config = parse(
        f'kafka: {{bootstrap_servers: "127.0.0.1:{free_port()}", idempotence: false}}', env={}
    )
    assert config.kafka is not None
    kafka = config.kafka
    bus = SpooledBus(lambda: KafkaBus(kafka), tmp_path, spool_after=0.2, max_bytes=1_000_000)
    await bus.start()
    try:
        assert bus.mode == "spooling"
        assert bus._spool._conn is not None
        assert_durable(bus._spool._conn)
    finally:
        await bus.close()


def unused_kafka() -> Bus:
    raise AssertionError("a refused record must not reach Kafka")


def refusing_spool(data_dir: Path) -> SpooledBus:
    return SpooledBus(
        unused_kafka, data_dir, spool_after=1.0, max_bytes=10_000, max_record_bytes=100
    )


@pytest.mark.parametrize(
    "record",
    [
        Record(topic="t", value=b"v" * 101),
        Record(topic="t", value=b"v" * 60, key=b"k" * 41),
        Record(topic="t", value=b"v" * 60, key=b"k", headers=(("relay-error", b"e" * 29),)),
    ],
    ids=["value", "key", "headers"],
)
async def test_key_and_headers_count_toward_the_limit(tmp_path: Path, record: Record) -> None:
    bus = refusing_spool(tmp_path)
    with pytest.raises(RecordTooLarge):
        await bus.publish([Record(topic="t", value=b"small"), record])


async def test_a_record_at_the_limit_is_not_refused_as_too_large(tmp_path: Path) -> None:
    bus = refusing_spool(tmp_path)
    at_limit = Record(topic="t", value=b"v" * 60, key=b"k", headers=(("relay-error", b"e" * 28),))
    with pytest.raises(BusError) as raised:  # not connected: it would go to the spool
        await bus.publish([at_limit])
    assert not isinstance(raised.value, RecordTooLarge)


# -- from the mutation check (tests/README.md, "Mutation check") --


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
            names = {task.get_name() for task in asyncio.all_tasks()}
            assert {"spool-drainer", "spool-adopt-spool-1.sqlite3"} <= names
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
        broker.watch = lambda: (bus.spooled_records, bus.spooled_bytes)
        with capture_logs() as logs:
            broker.down = False
            await poll_until(lambda: bus.mode == "direct", what="the spool drained")
        drains = [(e["records"], e["left"]) for e in logs if e["event"] == "spool_drained"]
        assert drains == [(2, 3), (2, 1), (1, 0)]
        one = _size(keyed(1))  # every record here is as long
        assert broker.watched == [(5, size), (3, size - 2 * one), (1, size - 4 * one)]
        assert [r.value for r in read(broker.path, "events")] == [
            b"event %d" % n for n in range(1, 6)
        ]
    finally:
        await bus.close()


async def test_a_direct_publish_hands_its_probe_to_kafka(broker: Broker, tmp_path: Path) -> None:
    bus = spooled(broker, tmp_path)
    await bus.start()
    try:
        probe = PublishProbe()
        await bus.publish([keyed(1)], probe)
        assert probe.sent_at is not None and not probe.spooled  # the broker's own send
        assert broker.batches == [1] and read(bus.path) == []
    finally:
        await bus.close()


async def test_why_publishing_went_to_the_spool_is_logged(broker: Broker, tmp_path: Path) -> None:
    bus = spooled(broker, tmp_path)
    with capture_logs() as logs, pytest.raises(BusError):
        await bus.publish([keyed(1)])  # not started: no producer, and no spool to write
    assert [(e["event"], e["reason"]) for e in logs] == [
        ("kafka_unavailable_spooling", "not connected to Kafka")
    ]
    assert (bus.spooled_records, bus.spooled_bytes) == (0, 0)
    again = spooled(broker, tmp_path)
    await again.start()
    try:
        broker.answers = ["", ""]  # a failure without a message, twice
        with capture_logs() as logs:
            await again.publish([keyed(2)])  # spooled
            await poll_until(lambda: again.mode == "direct", what="the spool drained")
        assert (logs[0]["event"], logs[0]["reason"]) == (
            "kafka_unavailable_spooling",
            "no acknowledgement in time",
        )
        [waited] = [e for e in logs if e["event"] == "spool_drain_waiting"]
        assert (waited["error"], waited["retry_in"]) == ("BusError", 0.2)
        assert [r.value for r in read(broker.path, "events")] == [b"event 2"]
    finally:
        await again.close()


async def test_the_drainer_waits_for_a_broker_it_cannot_reach_doubling_its_pause(
    broker: Broker, tmp_path: Path
) -> None:
    broker.unreachable = True
    bus = spooled(broker, tmp_path)
    with capture_logs() as logs:
        await bus.start()  # nothing spooled, but no producer: not direct
        try:

            def waits() -> list[tuple[str, float]]:
                lines = [e for e in logs if e["event"] == "spool_drain_waiting"]
                return [(e["error"], e["retry_in"]) for e in lines]

            await poll_until(lambda: len(waits()) >= 2, what="two tries")
            assert bus.mode == "spooling"
            assert waits()[:2] == [("broker away", 0.2), ("broker away", 0.4)]
            broker.unreachable = False
            await poll_until(lambda: bus.mode == "direct", what="connected")
            await bus.publish([keyed(1)])
            assert broker.batches == [1]
        finally:
            await bus.close()


async def test_an_adopted_spool_drains_in_batches_and_waits_again_after_a_refusal(
    broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("relay.bus.spool._DRAIN_BATCH", 2)
    first, second = await two_workers(tmp_path)
    await second.publish([keyed(n) for n in range(1, 6)])
    await second.close()
    await first.close()
    broker.answers = [None, "broker away"]  # the second batch refused once
    again = claiming(broker, tmp_path)
    await again.start()
    try:
        await poll_until(lambda: read(tmp_path / "spool-1.sqlite3") == [], what="adopted")
        assert broker.batches == [2, 2, 1]
        assert [r.value for r in read(broker.path, "events")] == [
            b"event %d" % n for n in range(1, 6)
        ]
    finally:
        await again.close()


def live(name: str) -> list[float]:
    return [sample.value for f in LIVE.collect() if f.name == name for sample in f.samples]


async def test_the_spool_has_its_own_file_its_gauges_and_kafkas_record_limit(
    broker: Broker, tmp_path: Path
) -> None:
    bus = SpooledBus(lambda: broker, tmp_path, spool_after=1.0, max_bytes=1_000_000)
    assert bus.max_record_bytes == 1_000_000  # Kafka's own default limit of a message
    assert bus.path == tmp_path / "spool.sqlite3"  # never the embedded log's file
    await bus.start()
    broker.down = True
    try:
        await bus.publish([keyed(n) for n in range(1, 4)])
        assert bus.spooled_records == 3
        # LIVE is one per process: other tests' buses may be in it too
        assert 3.0 in live("relay_spool_records")
        assert float(bus.spooled_bytes) in live("relay_spool_bytes")
    finally:
        await bus.close()


async def test_a_bus_closes_once_started_or_not_and_again(broker: Broker, tmp_path: Path) -> None:
    await spooled(broker, tmp_path).close()  # never started
    bus = claiming(broker, tmp_path)
    await bus.start()
    await bus.close()
    await bus.close()  # a second close is a no-op


async def test_a_producer_that_fails_to_close_changes_nothing(
    broker: Broker, tmp_path: Path
) -> None:
    broker.unreachable, broker.close_failures = True, 1
    bus = spooled(broker, tmp_path)
    with capture_logs() as logs:
        await bus.start()  # the producer fails to start, then to close
    try:
        assert (logs[0]["event"], logs[0]["reason"]) == (
            "kafka_unavailable_spooling",
            "broker away",
        )
        broker.unreachable = False
        await poll_until(lambda: bus.mode == "direct", what="connected")
    finally:
        broker.close_failures = 1
        await bus.close()  # the spool is closed all the same
    assert not bus.ready()
