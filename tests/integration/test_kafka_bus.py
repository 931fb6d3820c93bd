"""The group-commit Kafka publisher against the real broker (Tansu)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import ConsumerRecord

from relay.bus import BusError, PublishProbe, Record, RecordTooLarge
from relay.bus.kafka import KafkaBus
from relay.config import parse
from tests.broker import Broker, running_broker, stopped
from tests.support import consume, drain, poll_until, unique

pytestmark = pytest.mark.integration


def make_bus(bootstrap: str, request_timeout_ms: int = 30_000, **options: Any) -> KafkaBus:
    config = parse(
        f'kafka: {{bootstrap_servers: "{bootstrap}", idempotence: false, '
        f"request_timeout_ms: {request_timeout_ms}}}",
        env={},
    )
    assert config.kafka is not None
    return KafkaBus(config.kafka, **options)


@asynccontextmanager
async def running(bus: KafkaBus) -> AsyncIterator[KafkaBus]:
    await bus.start()
    try:
        yield bus
    finally:
        await bus.close()


async def create_topic(bootstrap: str, partitions: int) -> str:
    topic = unique("bus")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, replication_factor=1)])
    finally:
        await admin.close()
    return topic


def expected_partition(key: bytes, partitions: int) -> int:
    ids = list(range(partitions))
    return int(DefaultPartitioner()(key, ids, ids))


def by_partition(
    records: list[ConsumerRecord[bytes, bytes]],
) -> dict[int, list[ConsumerRecord[bytes, bytes]]]:
    out: dict[int, list[ConsumerRecord[bytes, bytes]]] = {}
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        out.setdefault(r.partition, []).append(r)
    return out


async def test_concurrent_publishes_land_where_any_kafka_client_would_put_them(
    broker: Broker,
) -> None:
    partitions = 6
    keyed = await create_topic(broker.bootstrap, partitions)
    unkeyed = await create_topic(broker.bootstrap, partitions)
    requests = 400

    async def request(bus: KafkaBus, i: int) -> None:
        await bus.publish(
            [
                Record(
                    topic=keyed,
                    value=f"{i}".encode(),
                    key=f"conversation:{i % 37}".encode(),
                    headers=(("ce_id", f"id-{i}".encode()), ("n", b"1")),
                ),
                Record(topic=unkeyed, value=f"raw-{i}".encode()),
            ]
        )

    async with running(make_bus(broker.bootstrap)) as bus:
        # Once the topics' metadata is known, publish appends without yielding: requests
        # started in this order reach each partition in this order.
        await request(bus, 0)
        await asyncio.gather(*(request(bus, i) for i in range(1, requests)))

    landed = await consume(broker.bootstrap, keyed, requests)
    assert sorted(int(r.value) for r in landed) == list(range(requests))
    for record in landed:
        assert record.key is not None
        assert record.partition == expected_partition(record.key, partitions)
        i = int(record.value)
        assert record.key == f"conversation:{i % 37}".encode()
        assert list(record.headers) == [("ce_id", f"id-{i}".encode()), ("n", b"1")]
    # Per key, the broker holds the records in the order they were published.
    for records in by_partition(landed).values():
        per_key: dict[bytes, list[int]] = {}
        for r in records:
            assert r.key is not None
            per_key.setdefault(r.key, []).append(int(r.value))
        for values in per_key.values():
            assert values == sorted(values)

    raw = await consume(broker.bootstrap, unkeyed, requests)
    assert sorted(r.value for r in raw) == sorted(f"raw-{i}".encode() for i in range(requests))
    assert all(r.key is None for r in raw)
    assert {r.partition for r in raw} == set(range(partitions))  # null keys: round robin


async def test_batches_past_the_size_limit_are_split_in_order(broker: Broker) -> None:
    topic = await create_topic(broker.bootstrap, 2)
    kilobyte = b"x" * 1000
    big = b"B" * 14_000  # most of a batch: goes in one of its own
    too_big = b"T" * 40_000  # more than any batch holds: refused before anything is sent

    async with running(make_bus(broker.bootstrap, max_batch_bytes=16 * 1024)) as bus:
        await bus.publish([Record(topic=topic, value=b"first", key=b"same-key")])
        one_request = [
            Record(
                topic=topic,
                value=b"%d:" % i + kilobyte,
                key=b"same-key",
                headers=(("i", b"%d" % i),),
            )
            for i in range(100)
        ]
        others = [
            bus.publish([Record(topic=topic, value=b"%d:" % (100 + i) + kilobyte, key=b"same-key")])
            for i in range(50)
        ]
        await asyncio.gather(bus.publish(one_request), *others)
        waiting = asyncio.create_task(
            bus.publish([Record(topic=topic, value=big, key=b"same-key")])
        )
        await asyncio.sleep(0)  # appended, not yet acknowledged
        with pytest.raises(RecordTooLarge):
            await bus.publish([Record(topic=topic, value=too_big, key=b"same-key")])
        await waiting  # a refused record fails no one else's request
        await bus.publish([Record(topic=topic, value=b"after", key=b"same-key")])

    landed = await consume(broker.bootstrap, topic, 153)
    assert {r.partition for r in landed} == {expected_partition(b"same-key", 2)}
    values = [r.value for r in sorted(landed, key=lambda r: r.offset)]
    assert values[0] == b"first"
    assert values[1:151] == [b"%d:" % i + kilobyte for i in range(150)]
    assert values[151:] == [big, b"after"]
    # a record that starts a new batch after a full one keeps its key and headers
    assert all(r.key == b"same-key" for r in landed)
    in_order = sorted(landed, key=lambda r: r.offset)
    assert [list(r.headers) for r in in_order[1:101]] == [[("i", b"%d" % i)] for i in range(100)]


async def test_close_flushes_what_was_accepted_then_refuses(broker: Broker) -> None:
    topic = await create_topic(broker.bootstrap, 3)
    bus = make_bus(broker.bootstrap)
    await bus.start()
    await bus.publish([Record(topic=topic, value=b"-1", key=b"-1")])
    tasks = [
        asyncio.create_task(bus.publish([Record(topic=topic, value=b"%d" % i, key=b"%d" % i)]))
        for i in range(200)
    ]
    await asyncio.sleep(0)  # every task has appended its record; none is acknowledged yet
    await bus.close()
    assert all(t.done() and t.exception() is None for t in tasks)
    assert not bus.ready()
    with pytest.raises(BusError):
        await bus.publish([Record(topic=topic, value=b"late")])
    landed = await consume(broker.bootstrap, topic, 201)
    assert sorted(int(r.value) for r in landed) == list(range(-1, 200))


async def test_a_broker_outage_fails_every_waiting_request_with_bus_error() -> None:
    with running_broker() as paused:  # a broker of this test's own: pausing it disturbs none
        bootstrap, process = paused.bootstrap, paused.process
        topic = await create_topic(bootstrap, 2)
        async with running(make_bus(bootstrap, request_timeout_ms=1000)) as bus:
            await bus.publish([Record(topic=topic, value=b"before", key=b"k")])

            process.send_signal(signal.SIGSTOP)
            await poll_until(lambda: stopped(process), what="the broker stopped")
            try:
                outcomes = await asyncio.wait_for(
                    asyncio.gather(
                        *(
                            bus.publish([Record(topic=topic, value=b"during-%d" % i, key=b"k")])
                            for i in range(20)
                        ),
                        return_exceptions=True,
                    ),
                    timeout=30,
                )
            finally:
                process.send_signal(signal.SIGCONT)
            assert all(isinstance(o, BusError) for o in outcomes), outcomes

            # The broker is back: publishing works again (reconnecting may take a moment).
            async with asyncio.timeout(30):
                while True:
                    try:
                        await bus.publish([Record(topic=topic, value=b"after", key=b"k")])
                        break
                    except BusError:
                        await asyncio.sleep(0.2)

        # What failed may still have landed (at-least-once); what was acknowledged did.
        values = [r.value for r in await drain(bootstrap, topic)]
        assert values[0] == b"before" and b"after" in values


async def test_no_request_waits_past_the_delivery_timeout_whatever_the_producer_does() -> None:
    # The producer itself would wait 30 s (and retry forever with idempotence on).
    with running_broker() as paused:
        bootstrap, process = paused.bootstrap, paused.process
        topic = await create_topic(bootstrap, 1)
        bus = make_bus(bootstrap, request_timeout_ms=30_000, delivery_timeout=1.0)
        async with running(bus):
            await bus.publish([Record(topic=topic, value=b"before", key=b"k")])
            process.send_signal(signal.SIGSTOP)
            await poll_until(lambda: stopped(process), what="the broker stopped")
            try:
                first = asyncio.create_task(bus.publish([Record(topic=topic, value=b"a")]))
                await asyncio.sleep(0.1)
                queued = asyncio.create_task(bus.publish([Record(topic=topic, value=b"b")]))
                outcomes = await asyncio.wait_for(
                    asyncio.gather(first, queued, return_exceptions=True), timeout=10
                )
            finally:
                process.send_signal(signal.SIGCONT)
            assert all(isinstance(o, BusError) for o in outcomes), outcomes


async def test_unique_keys_on_one_topic_do_not_evict_another_topics_cached_keys(
    broker: Broker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attempt log publishes unique event ids as keys; the event topics' conversation
    keys repeat and stay cached (murmur2 is computed once per key and topic)."""
    from relay.bus.kafka import producer

    monkeypatch.setattr(producer, "_HASH_CACHE_SIZE", 8)
    events = await create_topic(broker.bootstrap, 4)
    attempts = await create_topic(broker.bootstrap, 4)  # the same partition count
    async with running(make_bus(broker.bootstrap)) as bus:
        await bus.publish([Record(topic=events, value=b"1", key=b"conversation:1")])
        for i in range(20):  # more unique keys than the cache holds
            await bus.publish([Record(topic=attempts, value=b"a", key=f"event-{i}".encode())])
        assert bus._topics[events].indexes == {
            b"conversation:1": expected_partition(b"conversation:1", 4)
        }
        assert len(bus._topics[attempts].indexes) <= 8


async def test_only_a_started_bus_not_closing_is_ready_and_takes_records(broker: Broker) -> None:
    topic = await create_topic(broker.bootstrap, 1)
    bus = make_bus(broker.bootstrap)
    record = Record(topic=topic, value=b"v")
    assert not bus.ready()
    with pytest.raises(BusError, match=r"^the Kafka producer is not running$"):
        await bus.publish([record])
    await bus.start()
    assert bus.ready()
    await bus.publish([record])
    closing = asyncio.create_task(bus.close())
    await asyncio.sleep(0)  # close has begun: it waits for what is in flight
    assert bus._producer is not None and not bus.ready()
    with pytest.raises(BusError, match=r"^the Kafka producer is not running$"):
        await bus.publish([record])
    await closing
    assert not bus.ready()


async def test_a_record_is_refused_one_byte_past_what_a_batch_holds(broker: Broker) -> None:
    """Value, key and every header's name and value count; the limit is the batch size
    less 1024 bytes kept for framing (15,360 bytes here)."""
    topic = await create_topic(broker.bootstrap, 1)

    def record(header: int) -> Record:
        return Record(topic, b"v" * 8000, b"k" * 4000, (("h", b"x" * header), ("n", b"")))

    async with running(make_bus(broker.bootstrap, max_batch_bytes=16 * 1024)) as bus:
        await bus.publish([record(3358)])  # 8000 + 4000 + 1 + 3358 + 1 = 15,360: fits
        with pytest.raises(RecordTooLarge) as refused:
            await bus.publish([record(3359)])
    assert str(refused.value) == (
        f"a 15361-byte record for {topic} is over the 15360-byte limit of a Kafka batch"
    )
    [landed] = await consume(broker.bootstrap, topic, 1)
    assert len(landed.value) == 8000 and landed.key == b"k" * 4000


async def test_a_full_buffer_and_a_batch_still_in_flight_fail_requests_within_the_timeout() -> None:
    """The buffer bound counts exactly the bytes waiting for the broker; a batch the broker
    never answers fails its requests after the delivery timeout, and keeps failing the
    requests queued behind it on its partition, one more timeout each."""
    with running_broker() as paused:
        bootstrap, process = paused.bootstrap, paused.process
        topic = await create_topic(bootstrap, 1)
        bus = make_bus(bootstrap, max_buffer_bytes=100, delivery_timeout=1.0)
        async with running(bus):
            for _ in range(100):  # acknowledged ones leave nothing counted in the buffer
                await bus.publish([Record(topic, b"0123456789", b"key")] * 2)
            process.send_signal(signal.SIGSTOP)
            await poll_until(lambda: stopped(process), what="the broker stopped")
            try:
                async with asyncio.timeout(20):
                    # value and key count: 50 + 10 bytes
                    in_flight = asyncio.create_task(
                        bus.publish([Record(topic, b"a" * 50, b"k" * 10)])
                    )
                    await asyncio.sleep(0.1)  # handed to the producer
                    queued = asyncio.create_task(bus.publish([Record(topic, b"b" * 40)]))
                    await asyncio.sleep(0)  # appended: exactly 100 bytes wait now
                    with pytest.raises(BusError) as full:
                        await bus.publish([Record(topic, b"c")])
                    outcomes = await asyncio.gather(in_flight, queued, return_exceptions=True)
                    # the batch is still with the producer: what comes next fails too
                    with pytest.raises(BusError) as behind:
                        await bus.publish([Record(topic, b"d")])
            finally:
                process.send_signal(signal.SIGCONT)
    assert str(full.value) == "Kafka is not keeping up: the producer buffer is full"
    assert [str(o) for o in outcomes] == ["Kafka did not acknowledge within 1s"] * 2
    assert str(behind.value) == "Kafka did not acknowledge within 1s"


async def test_a_traced_publish_learns_where_each_record_went_and_when_it_left(
    broker: Broker,
) -> None:
    topic = await create_topic(broker.bootstrap, 4)
    keys = [b"conversation:%d" % i for i in range(6)]
    async with running(make_bus(broker.bootstrap)) as bus:
        await bus.publish([Record(topic, b"warm", b"x")])  # metadata known: no wait below
        probe = PublishProbe()
        before = time.monotonic()
        await bus.publish([Record(topic, b"v", key) for key in keys], probe)
        assert probe.placed == [(topic, expected_partition(key, 4)) for key in keys]
        assert probe.sent_at is not None and before <= probe.sent_at <= time.monotonic()
