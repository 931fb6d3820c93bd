"""KafkaBus's own branching where a real broker cannot be made to take it on cue: a send
refused or answered with an error, an acknowledgement that comes late or in another order,
metadata that fails, changes or is slow, ``close`` racing all of these.

The one fake here is at the aiokafka client boundary: :class:`FakeProducer` stands in for
``AIOKafkaProducer`` (``start``, ``stop``, ``partitions_for``, ``create_batch``,
``send_batch``) with aiokafka's real ``BatchBuilder``, and every send's future is the test's
to settle. What a real broker does with the batches is tested on Tansu in
``tests/integration/test_kafka_bus.py``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka.errors import KafkaError, KafkaTimeoutError, NodeNotReadyError
from aiokafka.producer.message_accumulator import BatchBuilder

import relay.bus.kafka.producer as producer_module
from relay.bus import BusError, Record
from relay.bus.kafka import KafkaBus
from relay.bus.kafka.batches import default_partition
from relay.config import Kafka
from tests.support import free_port

HANG = 10.0
"""A bound on waits that end at once when the code is right (a hang fails, never a timing)."""


@dataclass
class Sent:
    topic: str
    partition: int
    builder: Any
    future: asyncio.Future[None]


@dataclass
class FakeProducer:
    batch_bytes: int
    partitions: int = 1
    sends: list[Sent] = field(default_factory=list)
    refuse: Exception | None = None
    metadata_error: Exception | None = None
    metadata_gate: asyncio.Event | None = None
    metadata_calls: int = 0
    start_error: Exception | None = None
    events: list[str] = field(default_factory=list)
    sent: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        if self.start_error is not None:
            raise self.start_error

    async def stop(self) -> None:
        self.events.append("stop")

    async def partitions_for(self, topic: str) -> set[int]:
        self.metadata_calls += 1
        if self.metadata_gate is not None:
            await self.metadata_gate.wait()
        if self.metadata_error is not None:
            raise self.metadata_error
        return set(range(self.partitions))

    def create_batch(self) -> Any:
        return BatchBuilder(self.batch_bytes, 0)

    async def send_batch(self, builder: Any, topic: str, *, partition: int) -> Any:
        if self.refuse is not None:
            raise self.refuse
        sent = Sent(topic, partition, builder, asyncio.get_running_loop().create_future())
        self.sends.append(sent)
        self.sent.set()
        return sent.future

    def ack(self, sent: Sent) -> None:
        self.events.append(f"ack {sent.partition}")
        sent.future.set_result(None)


class FakedBus(KafkaBus):
    def __init__(self, fake: FakeProducer, **options: Any) -> None:
        super().__init__(nowhere(), max_batch_bytes=fake.batch_bytes, **options)
        self.fake = fake

    def _make_producer(self) -> Any:
        return self.fake


def nowhere(**options: Any) -> Kafka:
    return Kafka(bootstrap_servers=f"127.0.0.1:{free_port()}", idempotence=False, **options)


@asynccontextmanager
async def running(
    partitions: int = 1, batch_bytes: int = 64 * 1024, **options: Any
) -> AsyncIterator[FakedBus]:
    bus = FakedBus(FakeProducer(batch_bytes, partitions), **options)
    await bus.start()
    try:
        yield bus
    finally:
        for sent in bus.fake.sends:  # whatever a test left in flight lands, so close is quick
            if not sent.future.done():
                sent.future.set_result(None)
        async with asyncio.timeout(HANG):
            await bus.close()


async def sends(fake: FakeProducer, count: int) -> list[Sent]:
    """The first ``count`` sends, once the flusher has made them."""
    async with asyncio.timeout(HANG):
        while len(fake.sends) < count:
            fake.sent.clear()
            await fake.sent.wait()
    return fake.sends[:count]


async def turns(count: int = 20) -> None:
    """Let the flusher and the callbacks run (no time passes)."""
    for _ in range(count):
        await asyncio.sleep(0)


def key_for(partition: int, partitions: int) -> bytes:
    return next(
        key
        for i in range(1000)
        if default_partition(key := f"k{i}".encode(), partitions) == partition
    )


def record(size: int = 10, key: bytes | None = None, topic: str = "events") -> Record:
    return Record(topic, b"v" * size, key)


async def answered(call: Awaitable[None]) -> None:
    async with asyncio.timeout(HANG):
        await call


def test_the_delivery_timeout_is_the_request_timeout_plus_five_seconds() -> None:
    assert KafkaBus(nowhere(request_timeout_ms=4321)).delivery_timeout == pytest.approx(9.321)
    assert KafkaBus(nowhere(), delivery_timeout=2.5).delivery_timeout == 2.5


async def test_the_producer_is_made_with_relays_settings() -> None:
    config = nowhere(compression="gzip", linger_ms=7, request_timeout_ms=4321)
    plain = KafkaBus(config, max_batch_bytes=5000)._make_producer()
    idempotent = KafkaBus(Kafka(bootstrap_servers=config.bootstrap_servers))._make_producer()
    try:
        assert plain._sender._acks == -1  # "all"
        assert plain._txn_manager is None
        assert idempotent._txn_manager is not None
        assert plain._compression_type == "gzip"
        assert idempotent._compression_type is None
        assert plain._message_accumulator._linger_time == pytest.approx(0.007)
        assert plain._request_timeout_ms == 4321
        assert plain._message_accumulator._batch_size == 5000
    finally:
        await plain.stop()
        await idempotent.stop()


async def test_the_flusher_task_is_named() -> None:
    async with running():
        names = {task.get_name() for task in asyncio.all_tasks()}
        assert "kafka-group-commit" in names


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (ValueError("boom"), ""),
        (
            NodeNotReadyError("away"),
            "cannot connect to Kafka at {servers}: NodeNotReadyError: away",
        ),
    ],
)
async def test_a_start_failure_is_a_bus_error_naming_the_servers(
    error: Exception, text: str
) -> None:
    fake = FakeProducer(64 * 1024, start_error=error)
    bus = FakedBus(fake)
    with pytest.raises(Exception) as raised:
        await bus.start()
    if not isinstance(error, KafkaError):  # not Kafka's: raised as it is
        assert raised.value is error
    else:
        assert type(raised.value) is BusError
        assert str(raised.value) == text.format(servers=bus.config.servers)
        assert raised.value.__cause__ is error
    assert fake.events == ["stop"]
    assert not bus.ready()


@pytest.mark.parametrize(
    ("refusal", "text"),
    [
        (KafkaTimeoutError("slow"), "Kafka did not take the batch: KafkaTimeoutError: slow"),
        (ValueError("odd"), "Kafka did not take the batch: ValueError('odd')"),
    ],
)
async def test_a_send_refused_fails_its_requests_and_the_partition_goes_on(
    refusal: Exception, text: str
) -> None:
    async with running() as bus:
        bus.fake.refuse = refusal
        with pytest.raises(BusError) as raised:
            await answered(bus.publish([record()]))
        assert str(raised.value) == text
        bus.fake.refuse = None
        later = asyncio.create_task(bus.publish([record()]))
        (sent,) = await sends(bus.fake, 1)
        bus.fake.ack(sent)
        await answered(later)


@pytest.mark.parametrize("how", ["cancelled", "error"])
async def test_a_failed_batch_fails_what_queues_behind_it(how: str) -> None:
    # max_buffer_bytes 100: the second request (100 bytes) fits after the first (10) only
    # while the first is counted; once both are failed the buffer is empty again.
    async with running(max_buffer_bytes=100, delivery_timeout=HANG) as bus:
        first = asyncio.create_task(bus.publish([record(10)]))
        (sent,) = await sends(bus.fake, 1)
        behind = asyncio.create_task(bus.publish([record(100)]))
        await turns()
        assert not behind.done()
        if how == "cancelled":
            sent.future.cancel()
            text = "the Kafka send was cancelled"
        else:
            sent.future.set_exception(NodeNotReadyError("gone"))
            text = "Kafka did not acknowledge: NodeNotReadyError: gone"
        for request in (first, behind):
            with pytest.raises(BusError) as raised:
                await answered(request)
            assert str(raised.value) == text
        assert len(bus.fake.sends) == 1  # the failed request behind it was never sent
        # nothing is left counted: a full-size request is taken at once, and sent
        again = asyncio.create_task(bus.publish([record(100)]))
        (_, sent) = await sends(bus.fake, 2)
        bus.fake.ack(sent)
        await answered(again)
        # and close has nothing to wait for
        closing = asyncio.create_task(bus.close())
        await answered(closing)


async def test_a_request_spanning_two_batches_waits_for_both() -> None:
    async with running(partitions=2) as bus:
        request = asyncio.create_task(
            bus.publish([record(key=key_for(0, 2)), record(key=key_for(1, 2))])
        )
        first, second = await sends(bus.fake, 2)
        bus.fake.ack(first)
        await turns()
        assert not request.done()
        bus.fake.ack(second)
        await answered(request)


async def test_the_buffer_counts_values_and_keys_from_zero_and_frees_each_batch_its_own() -> None:
    # 100 bytes of room: after an unkeyed 99-byte record there is room for one more request;
    # a second request then fills it, and acknowledging the larger one frees exactly its size.
    async with running(partitions=2, max_buffer_bytes=100, delivery_timeout=0.5) as bus:
        small = asyncio.create_task(bus.publish([record(99)]))
        await sends(bus.fake, 1)
        large = asyncio.create_task(bus.publish([record(95, key=key_for(1, 2))]))
        _, sent_large = await sends(bus.fake, 2)
        # counted: 99 + 95 + 5 = 199 bytes, over the bound: the next one waits
        waiting = asyncio.create_task(bus.publish([record(1)]))
        await turns()
        assert not waiting.done()
        bus.fake.ack(sent_large)
        await answered(large)
        # 99 bytes left counted, under the bound: the waiting request goes
        (_, _, sent_waiting) = await sends(bus.fake, 3)
        bus.fake.ack(sent_waiting)
        await answered(waiting)
        bus.fake.ack(bus.fake.sends[0])
        await answered(small)


async def test_metadata_failing_is_a_bus_error_naming_the_topic() -> None:
    async with running() as bus:
        bus.fake.metadata_error = KafkaTimeoutError("no leader")
        with pytest.raises(BusError) as raised:
            await answered(bus.publish([record(topic="orders")]))
        assert str(raised.value) == ("no metadata for topic 'orders': KafkaTimeoutError: no leader")


async def test_a_topics_partitions_are_trusted_for_a_while() -> None:
    async with running() as bus:
        for _ in range(2):
            request = asyncio.create_task(bus.publish([record()]))
            sent = (await sends(bus.fake, len(bus.fake.sends) + 1))[-1]
            bus.fake.ack(sent)
            await answered(request)
        assert bus.fake.metadata_calls == 1


async def test_a_refresh_keeps_the_partitions_batches_and_follows_a_new_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(producer_module, "_PARTITIONS_TTL", -1.0)  # every publish re-reads
    async with running(partitions=1) as bus:
        first = asyncio.create_task(bus.publish([record(key=b"a")]))
        (in_flight,) = await sends(bus.fake, 1)
        # the same count: the partition (and its batch in flight) is kept, so the next
        # batch waits for the first to be acknowledged
        second = asyncio.create_task(bus.publish([record(key=b"a")]))
        await turns()
        assert len(bus.fake.sends) == 1
        # two partitions now: a key goes where murmur2 over two puts it, and partition 0's
        # batch in flight still holds back the one behind it
        bus.fake.partitions = 2
        third = asyncio.create_task(bus.publish([record(key=key_for(1, 2))]))
        fourth = asyncio.create_task(bus.publish([record(key=key_for(0, 2))]))
        (_, to_one) = await sends(bus.fake, 2)
        assert to_one.partition == 1
        await turns()
        assert len(bus.fake.sends) == 2
        bus.fake.ack(to_one)
        await answered(third)
        bus.fake.ack(in_flight)
        await answered(first)
        (_, _, behind) = await sends(bus.fake, 3)
        assert behind.partition == 0
        bus.fake.ack(behind)
        await answered(asyncio.gather(second, fourth))
        assert bus.fake.metadata_calls == 4


async def test_close_while_a_publish_waits_for_metadata_refuses_it() -> None:
    async with running(partitions=1) as bus:
        held = asyncio.create_task(bus.publish([record()]))
        (sent,) = await sends(bus.fake, 1)
        bus.fake.metadata_gate = asyncio.Event()
        waiting = asyncio.create_task(bus.publish([record(topic="orders")]))
        await turns()
        closing = asyncio.create_task(bus.close())  # waits for the batch in flight
        await turns()
        assert not closing.done()
        bus.fake.metadata_gate.set()
        with pytest.raises(BusError) as raised:
            await answered(waiting)
        assert str(raised.value) == "the Kafka producer is not running"
        bus.fake.ack(sent)
        await answered(held)
        await answered(closing)
        assert len(bus.fake.sends) == 1


async def test_close_while_a_publish_waits_for_room_refuses_it() -> None:
    async with running(max_buffer_bytes=10, delivery_timeout=HANG) as bus:
        held = asyncio.create_task(bus.publish([record(10)]))
        (sent,) = await sends(bus.fake, 1)
        waiting = asyncio.create_task(bus.publish([record()]))
        await turns()
        closing = asyncio.create_task(bus.close())
        await turns()
        assert not (waiting.done() or closing.done())
        bus.fake.ack(sent)  # room, and idle: the waiting request sees the bus closing
        with pytest.raises(BusError) as raised:
            await answered(waiting)
        assert str(raised.value) == "the Kafka producer is not running"
        await answered(held)
        await answered(closing)
        assert len(bus.fake.sends) == 1


async def test_close_waits_for_every_batch_in_flight() -> None:
    async with running(partitions=2, delivery_timeout=HANG) as bus:
        requests = [asyncio.create_task(bus.publish([record(key=key_for(p, 2))])) for p in (0, 1)]
        first, second = await sends(bus.fake, 2)
        closing = asyncio.create_task(bus.close())
        await turns()
        bus.fake.ack(first)
        await turns()
        assert not closing.done()
        bus.fake.ack(second)
        await answered(asyncio.gather(*requests))
        await answered(closing)
        assert sorted(bus.fake.events[:2]) == ["ack 0", "ack 1"]
        assert bus.fake.events[2:] == ["stop"]


async def test_close_gives_up_after_its_bound_and_fails_what_is_still_in_flight() -> None:
    # A batch sent after close began has its own delivery timeout, which ends after close's
    # bound (the delivery timeout plus 1 s): close fails it then, with its own words.
    # Behind it, a batch sealed full waits its turn: close fails that one too.
    timeout = 2.0
    async with running(partitions=2, batch_bytes=2048, delivery_timeout=timeout) as bus:
        key = key_for(1, 2)  # partition 0 never used: close looks past an empty slot
        first = asyncio.create_task(bus.publish([record(key=key)]))
        (sent_first,) = await sends(bus.fake, 1)
        behind = asyncio.create_task(bus.publish([record(1000, key=key)]))
        last = asyncio.create_task(bus.publish([record(1000, key=key)]))  # a batch of its own
        await turns()
        closing = asyncio.create_task(bus.close())
        loop = asyncio.get_running_loop()
        loop.call_later(timeout * 0.75, bus.fake.ack, sent_first)
        await answered(first)  # acknowledged inside its delivery timeout
        async with asyncio.timeout(HANG):
            await closing  # returns at its bound, no TimeoutError out of it
        for request in (behind, last):
            with pytest.raises(BusError) as raised:
                await answered(request)
            assert str(raised.value) == "the Kafka producer was closed"
        assert len(bus.fake.sends) == 2  # the sealed batch never left
        assert bus.fake.events[-1] == "stop"


async def test_unkeyed_records_take_the_partitions_in_turn() -> None:
    async with running(partitions=2) as bus:
        request = asyncio.create_task(bus.publish([record(), record()]))
        sent = await sends(bus.fake, 2)
        assert sorted(s.partition for s in sent) == [0, 1]
        for s in sent:
            bus.fake.ack(s)
        await answered(request)


async def test_one_flush_sends_every_idle_partition_past_busy_ones() -> None:
    count = 16
    async with running(partitions=count) as bus:
        keys = [key_for(p, count) for p in range(count)]
        busy = asyncio.create_task(bus.publish([record(key=k) for k in keys[:-1]]))
        first = await sends(bus.fake, count - 1)
        # one request for every partition: all but the last have a batch in flight
        every = asyncio.create_task(bus.publish([record(key=k) for k in keys]))
        (last,) = (await sends(bus.fake, count))[count - 1 :]
        assert last.partition == count - 1
        for s in first:
            bus.fake.ack(s)
        await answered(busy)
        rest = (await sends(bus.fake, 2 * count - 1))[count:]
        for s in [last, *rest]:
            bus.fake.ack(s)
        await answered(every)


async def test_close_after_a_batch_timed_out_still_waits_for_it_to_land() -> None:
    # The delivery timeout fails the requests, but the batch stays with the producer: close
    # stops it only once the batch is settled (or at its own bound), not when the timer fires.
    async with running(delivery_timeout=1.0) as bus:
        request = asyncio.create_task(bus.publish([record()]))
        (sent,) = await sends(bus.fake, 1)
        closing = asyncio.create_task(bus.close())
        with pytest.raises(BusError) as raised:
            await answered(request)
        assert str(raised.value) == "Kafka did not acknowledge within 1s"
        asyncio.get_running_loop().call_later(0.3, bus.fake.ack, sent)
        await answered(closing)
        assert bus.fake.events == ["ack 0", "stop"]


async def test_an_acknowledged_batch_leaves_no_timer_behind() -> None:
    # The first batch's timer would fire 1 s after it was sent; the second batch is sent
    # 0.5 s later and acknowledged 0.7 s after that, inside its own timeout: what queues
    # behind it must not be failed by the first one's timer.
    async with running(delivery_timeout=1.0) as bus:
        first = asyncio.create_task(bus.publish([record()]))
        (sent,) = await sends(bus.fake, 1)
        bus.fake.ack(sent)
        await answered(first)
        await asyncio.sleep(0.5)
        second = asyncio.create_task(bus.publish([record()]))
        (_, sent) = await sends(bus.fake, 2)
        behind = asyncio.create_task(bus.publish([record()]))
        asyncio.get_running_loop().call_later(0.7, bus.fake.ack, sent)
        await answered(second)
        (_, _, sent) = await sends(bus.fake, 3)
        bus.fake.ack(sent)
        await answered(behind)
