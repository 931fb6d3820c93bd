"""Kafka through aiokafka, with group commit: ``acks=all``, idempotence switchable.

Many concurrent requests share one broker round trip while each still waits for its own
acknowledgement:

- ``publish`` appends each record straight into an open record batch of its
  topic-partition (``producer.create_batch()``, about a microsecond a record, against
  ~35 µs for ``producer.send()``). The partition is the one any Kafka client would pick:
  murmur2 of the key, as aiokafka's and Java's default partitioner do (round-robin for a
  null key).
- One flusher task hands every topic-partition's batch to the producer
  (``send_batch``). Each topic-partition has at most one batch in flight: records that
  arrive meanwhile gather in the next batch, so batches grow with load by themselves and
  order within a partition is kept. A batch that is full is sealed and the next one started.
- ``publish`` returns once every batch holding one of its records is acknowledged. If any
  of them fails, it raises :class:`BusError` (the caller answers 503), and so does every
  request still waiting on that partition, so nothing queued behind a failed batch is
  acknowledged ahead of it.
- Bounded: at most ``max_buffer_bytes`` wait for the broker; past that ``publish`` waits
  for room, then gives up with :class:`BusError`. No request waits longer than the
  delivery timeout (the producer's request timeout plus a margin), whatever the broker does.
- ``close`` stops taking records, flushes what was accepted, then stops the producer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from relay.bus.base import BusError, BusRefused, PublishProbe, Record, RecordTooLarge
from relay.bus.kafka.batches import Batch, Partition, Topic, Waiter, default_partition, fail
from relay.bus.kafka.probe import start_failure
from relay.bus.kafka.security import client_options, refusal
from relay.config import Kafka

MAX_BATCH_BYTES = 1024 * 1024
MAX_BUFFER_BYTES = 64 * 1024 * 1024
_PARTITIONS_TTL = 30.0
"""Seconds a topic's partition count is trusted before it is read again from metadata."""
_HASH_CACHE_SIZE = 65_536
_DELIVERY_MARGIN = 5.0
_BATCH_OVERHEAD = 1024
"""Room kept in a batch for its header and one record's framing."""


class KafkaBus:
    name = "kafka"
    mode: str | None = None  # the spool around it has modes; the producer itself has one

    def __init__(
        self,
        config: Kafka,
        *,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        max_buffer_bytes: int = MAX_BUFFER_BYTES,
        delivery_timeout: float | None = None,
    ) -> None:
        """``delivery_timeout``: the longest a ``publish`` waits for the broker before it
        raises :class:`BusError` (default: the request timeout plus 5 s). It costs one timer
        per batch, none per request, so a caller that wants a bound need not add its own."""
        self.config = config
        self.max_batch_bytes = max_batch_bytes
        self.max_buffer_bytes = max_buffer_bytes
        self._large = (max_batch_bytes - _BATCH_OVERHEAD) // 2
        self.delivery_timeout = (
            delivery_timeout
            if delivery_timeout is not None
            else config.request_timeout_ms / 1000 + _DELIVERY_MARGIN
        )
        self._producer: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._topics: dict[str, Topic] = {}
        self._ready: set[Partition] = set()
        self._wakeup = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._closing = False
        self._buffered = 0
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._batches = 0

    def _make_producer(self) -> Any:
        return AIOKafkaProducer(
            **client_options(self.config),
            acks="all",
            enable_idempotence=self.config.idempotence,
            compression_type=self.config.compression,
            linger_ms=self.config.linger_ms,
            request_timeout_ms=self.config.request_timeout_ms,
            max_batch_size=self.max_batch_bytes,
        )

    async def start(self) -> None:
        producer = self._make_producer()
        try:
            await producer.start()
        except Exception as exc:
            await producer.stop()
            if (reason := await refusal(self.config)) is not None:
                raise BusRefused(reason) from exc
            if not isinstance(exc, KafkaError):
                raise
            raise await start_failure(self.config, exc) from exc
        self._loop = asyncio.get_running_loop()
        self._producer = producer
        self._closing = False
        self._flusher = asyncio.create_task(self._flush_forever(), name="kafka-group-commit")

    async def close(self) -> None:
        if self._producer is None:
            return
        self._closing = True
        self._wakeup.set()
        # Everything accepted gets its answer: acknowledged, or failed by the delivery timeout.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.delivery_timeout + 1):
                await self._idle.wait()
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
        self._fail_everything(BusError("the Kafka producer was closed"))
        producer, self._producer = self._producer, None
        await producer.stop()

    def ready(self) -> bool:
        return self._producer is not None and not self._closing

    async def publish(self, records: Sequence[Record], probe: PublishProbe | None = None) -> None:
        if not records:
            return
        producer = self._producer
        if producer is None or self._closing:
            raise BusError("the Kafka producer is not running")
        topics = self._topics
        loop = self._loop
        assert loop is not None
        now = loop.time()
        waited = False
        for record in records:
            if len(record.value) > self._large:
                self._check_size(record)
            known = topics.get(record.topic)
            if known is None or known.expires < now:
                await self._load_partitions(record.topic)
                waited = True
        if self._buffered >= self.max_buffer_bytes:
            await self._wait_for_room()
            waited = True
        if waited and (self._producer is None or self._closing):
            raise BusError("the Kafka producer is not running")

        waiter = Waiter(loop.create_future())
        ready = self._ready
        size = 0
        batches: list[Batch] | None = None if probe is None else []
        try:
            for record in records:
                part = self._partition_for(record)
                ready.add(part)
                batch = part.open
                if batch is None:
                    batch = part.open = self._new_batch()
                value, key, headers = record.value, record.key, list(record.headers)
                if (
                    batch.builder.append(timestamp=None, key=key, value=value, headers=headers)
                    is None
                ):
                    # Full: seal it and start the next one (an empty batch takes any record).
                    part.sealed.append(batch)
                    batch = part.open = self._new_batch()
                    batch.builder.append(timestamp=None, key=key, value=value, headers=headers)
                if batch.last is not waiter:
                    batch.last = waiter
                    batch.waiters.append(waiter)
                    waiter.remaining += 1
                    if batches is not None:
                        batches.append(batch)
                if probe is not None:
                    probe.placed.append((part.topic, part.partition))
                n = len(value) + (0 if key is None else len(key))
                batch.size += n
                size += n
        except BaseException:
            waiter.future.cancel()  # what was appended is sent; this request is not answered
            raise
        finally:
            self._buffered += size
            self._wakeup.set()
        await waiter.future
        if probe is not None and batches:
            probe.sent_at = max(batch.sent_at for batch in batches)

    def _check_size(self, record: Record) -> None:
        """Refuse, before anything is appended, a record no batch can hold: sent alone it
        would be refused by the broker and fail every request queued on its partition."""
        size = len(record.value) + len(record.key or b"")
        size += sum(len(name) + len(value) for name, value in record.headers)
        if size > self.max_batch_bytes - _BATCH_OVERHEAD:
            raise RecordTooLarge(
                f"a {size}-byte record for {record.topic} is over the "
                f"{self.max_batch_bytes - _BATCH_OVERHEAD}-byte limit of a Kafka batch"
            )

    def _new_batch(self) -> Batch:
        self._batches += 1
        self._idle.clear()
        return Batch(self._producer.create_batch())

    async def _load_partitions(self, topic: str) -> None:
        assert self._loop is not None and self._producer is not None
        try:
            ids = await self._producer.partitions_for(topic)
        except KafkaError as exc:
            raise BusError(f"no metadata for topic {topic!r}: {exc}") from exc
        count = len(ids)
        known = self._topics.get(topic)
        expires = self._loop.time() + _PARTITIONS_TTL
        if known is not None and len(known.partitions) == count:
            known.expires = expires
            return
        # Each topic caches its keys' partitions (murmur2 is pure Python, ~5 µs a key) on
        # its own: the attempt log's keys are unique event ids, and a cache shared with the
        # event topics would keep evicting the conversation keys that do repeat.
        fresh = Topic(count, expires, {})
        if known is not None:  # keep the batches of partitions that still exist
            for part in known.partitions[:count]:
                if part is not None:
                    fresh.partitions[part.partition] = part
        self._topics[topic] = fresh

    def _partition_for(self, record: Record) -> Partition:
        topic = self._topics[record.topic]
        slots = topic.partitions
        key = record.key
        if key is None:
            index = topic.next_null % len(slots)
            topic.next_null = index + 1
        else:
            indexes = topic.indexes
            cached = indexes.get(key)
            if cached is None:
                if len(indexes) >= _HASH_CACHE_SIZE:
                    indexes.clear()
                cached = indexes[key] = default_partition(key, len(slots))
            index = cached
        part = slots[index]
        if part is None:
            part = slots[index] = Partition(record.topic, index)
        return part

    async def _wait_for_room(self) -> None:
        self._room.clear()
        try:
            async with asyncio.timeout(self.delivery_timeout):
                while self._buffered >= self.max_buffer_bytes:
                    self._room.clear()
                    await self._room.wait()
        except TimeoutError:
            raise BusError("Kafka is not keeping up: the producer buffer is full") from None

    async def _flush_forever(self) -> None:
        wakeup = self._wakeup
        while True:
            await wakeup.wait()
            wakeup.clear()
            await self._flush()

    async def _flush(self) -> None:
        """Hand the next batch of every idle topic-partition to the producer."""
        producer = self._producer
        ready, self._ready = self._ready, set()
        for part in ready:
            if part.in_flight is not None:
                self._ready.add(part)  # its turn comes when the batch in flight is acked
                continue
            if part.sealed:
                batch = part.sealed.popleft()
            elif part.open is not None:
                batch, part.open = part.open, None
            else:
                continue
            if part.has_pending():
                self._ready.add(part)
            part.in_flight = batch
            batch.sent_at = time.monotonic()
            batch.builder.close()
            assert self._loop is not None
            part.timer = self._loop.call_later(self.delivery_timeout, self._timed_out, part, batch)
            try:
                future = await producer.send_batch(
                    batch.builder, part.topic, partition=part.partition
                )
            except KafkaError as exc:
                self._finished(part, batch, BusError(f"Kafka did not take the batch: {exc}"))
            except Exception as exc:
                self._finished(part, batch, BusError(f"Kafka did not take the batch: {exc!r}"))
            else:
                future.add_done_callback(lambda f, p=part, b=batch: self._acked(p, b, f))

    def _acked(self, part: Partition, batch: Batch, future: asyncio.Future[Any]) -> None:
        error: BusError | None = None
        if future.cancelled():
            error = BusError("the Kafka send was cancelled")
        elif (exc := future.exception()) is not None:
            error = BusError(f"Kafka did not acknowledge: {exc}")
        self._finished(part, batch, error)

    def _finished(self, part: Partition, batch: Batch, error: BusError | None) -> None:
        if part.in_flight is batch:
            part.in_flight = None
            if part.timer is not None:
                part.timer.cancel()
                part.timer = None
        self._batches -= 1
        self._buffered -= batch.size
        batch.size = 0
        if error is None:
            for waiter in batch.waiters:
                waiter.remaining -= 1
                if waiter.remaining == 0 and not waiter.future.done():
                    waiter.future.set_result(None)
        else:
            fail(batch, error)
            # Nothing queued behind a failed batch on this partition may be acknowledged
            # ahead of it: those requests fail too, and their senders retry in order.
            self._fail_pending(part, error)
        batch.waiters.clear()
        if self._buffered < self.max_buffer_bytes:
            self._room.set()
        if part.has_pending():
            self._ready.add(part)
            self._wakeup.set()
        if self._batches == 0:
            self._idle.set()

    def _fail_pending(self, part: Partition, error: BusError) -> None:
        batches = list(part.sealed)
        if part.open is not None:
            batches.append(part.open)
        part.sealed.clear()
        part.open = None
        for batch in batches:
            fail(batch, error)
            self._batches -= 1
            self._buffered -= batch.size
        self._ready.discard(part)

    def _timed_out(self, part: Partition, batch: Batch) -> None:
        """The broker has not answered within the delivery timeout: stop making requests wait.

        The batch stays with the producer (it may still land: at-least-once, and a retry of
        the same webhook carries the same event id); its requests and every one queued behind
        it on this partition get :class:`BusError` now. Until the batch is settled, requests
        for this partition keep failing after at most another delivery timeout.
        """
        part.timer = None
        error = BusError(f"Kafka did not acknowledge within {self.delivery_timeout:.0f}s")
        fail(batch, error)
        self._fail_pending(part, error)
        if part.in_flight is batch and self._loop is not None:
            part.timer = self._loop.call_later(self.delivery_timeout, self._timed_out, part, batch)
        if self._batches == 0:
            self._idle.set()

    def _fail_everything(self, error: BusError) -> None:
        for topic in self._topics.values():
            for part in topic.partitions:
                if part is None:
                    continue
                if part.in_flight is not None:
                    fail(part.in_flight, error)
                self._fail_pending(part, error)
