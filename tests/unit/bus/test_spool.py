"""The spool on real files, in front of a stand-in broker that can be taken away: accept
while it is away, drain oldest first, never spool what Kafka would refuse forever, refuse
(503) past the spool's size. ``tests/integration/test_spool.py`` does the same against a
paused Tansu broker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from relay.bus import Bus, BusError, Record
from relay.bus.base import RecordTooLarge
from relay.bus.embedded import EmbeddedLog, read
from relay.bus.kafka import KafkaBus
from relay.bus.spool import SpooledBus
from relay.config import parse
from tests.support import assert_durable, free_port, poll_until


class Broker(EmbeddedLog):
    """A durable log standing in for Kafka, that refuses every write while ``down``."""

    name = "kafka"

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, "broker.sqlite3")
        self.down = False

    async def publish(self, records: Sequence[Record]) -> None:
        if self.down:
            raise BusError("broker away")
        await super().publish(records)


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
        with pytest.raises(RecordTooLarge):
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
    await again.start()
    try:
        assert again.mode == "spooling"  # older records wait in the spool: not direct yet
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
