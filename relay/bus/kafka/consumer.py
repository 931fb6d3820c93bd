"""Reading Kafka: a subscriber's consumer group (with its rebalance listener), and the
bounded range ``relay replay`` reads; both are bus Subscriptions. Every other reader (tail,
the admin index, preflight) takes its consumer from :func:`outside_group` and its items
from :func:`kafka_item`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import (
    KafkaError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
    UnsupportedVersionError,
)

from relay.bus.base import FromOffset, Item, RangeStart, Revoked, Since, StartFrom, Stream
from relay.bus.kafka.security import client_options
from relay.config import Kafka

log = structlog.get_logger("relay.delivery")


def outside_group(config: Kafka, **options: Any) -> Any:
    """A consumer in no group that commits nothing: it reads partitions it assigns itself."""
    return AIOKafkaConsumer(
        **{**client_options(config), "group_id": None, "enable_auto_commit": False, **options}
    )


class KafkaSubscription:
    """A consumer group ``relay.sub.<name>``; commits are explicit, never automatic.

    A partition the group never committed starts at ``anchor_ms`` (the subscriber's first
    start) for ``latest``, at its beginning for ``earliest``; the start is committed at once,
    so neither a slow join, a rebalance nor a restart moves it. A committed position that
    retention already deleted resumes at the oldest record left.
    """

    def __init__(
        self,
        config: Kafka,
        group_id: str,
        topics: Sequence[str],
        start_from: StartFrom,
        anchor_ms: int | None = None,
    ) -> None:
        self._config = config
        self._topics = list(topics)
        self._group_id = group_id
        self._start_from = start_from
        self._anchor_ms = anchor_ms
        self._generation: dict[Any, int] = {}
        self.on_revoked: Revoked | None = None
        self._consumer: Any = None  # built by start(): one never started holds nothing open

    async def start(self) -> None:
        config = self._config
        self._consumer = AIOKafkaConsumer(
            **client_options(config),
            group_id=self._group_id,
            enable_auto_commit=False,
            auto_offset_reset="none",  # relay decides: see _place
            isolation_level="read_committed",
            session_timeout_ms=config.session_timeout_ms,
            heartbeat_interval_ms=config.heartbeat_interval_ms,
        )
        self._consumer.subscribe(self._topics, listener=_Rebalance(self))
        await _started(self._consumer)

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    def _stream(self, tp: Any) -> Stream:
        return (tp.topic, tp.partition, self._generation.get(tp, 0))

    async def _revoke(self, partitions: set[Any]) -> None:
        if self.on_revoked is not None:
            await self.on_revoked({self._stream(tp) for tp in partitions})

    def _assign(self, partitions: set[Any]) -> None:
        for tp in partitions:
            self._generation[tp] = self._generation.get(tp, 0) + 1

    async def fetch(self, max_records: int, wait: float) -> list[Item] | None:
        try:
            batches = await self._consumer.getmany(
                timeout_ms=int(wait * 1000), max_records=max_records
            )
        except NoOffsetForPartitionError as exc:
            if exc.args:
                await self._place(exc.args[0])
            return []
        except OffsetOutOfRangeError as exc:
            positions = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
            for tp in positions:
                if tp in self._consumer.assignment():
                    log.warning("position_out_of_range", topic=tp.topic, partition=tp.partition)
                    await self._consumer.seek_to_beginning(tp)
            return []
        return [
            kafka_item(message, self._stream(tp))
            for tp, messages in batches.items()
            for message in messages
        ]

    async def _place(self, tp: Any) -> None:
        """The first position of a partition this group never committed, committed at once."""
        consumer = self._consumer
        if tp not in consumer.assignment():
            return  # taken away meanwhile: its next owner places it
        if self._start_from == "earliest":
            offset = (await consumer.beginning_offsets([tp]))[tp]
        elif self._anchor_ms is None:
            offset = (await consumer.end_offsets([tp]))[tp]
        else:
            # the end first: whatever is published after it has a later offset
            end = (await consumer.end_offsets([tp]))[tp]
            try:
                found = (await consumer.offsets_for_times({tp: self._anchor_ms})).get(tp)
            except UnsupportedVersionError:  # a broker older than 0.10.1
                log.warning("anchor_by_time_unsupported", topic=tp.topic, partition=tp.partition)
                found = None
            # some brokers answer "nothing that late" with a placeholder, not null
            late_enough = found is not None and found.timestamp >= self._anchor_ms
            offset = min(found.offset, end) if late_enough else end
        if tp not in consumer.assignment():
            return  # taken away while we asked
        consumer.seek(tp, offset)
        log.info(
            "subscription_anchored",
            group=self._group_id,
            topic=tp.topic,
            partition=tp.partition,
            offset=offset,
            start_from=self._start_from,
        )
        try:
            await consumer.commit({tp: offset})
        except KafkaError as exc:  # placed anyway; the next commit records a position
            log.warning("commit_failed", error=str(exc))

    async def commit(self, positions: dict[Stream, int]) -> None:
        assignment = self._consumer.assignment()
        offsets = {}
        for (topic, partition, generation), next_offset in positions.items():
            tp = TopicPartition(topic, partition)
            # only what is still ours, read under the current assignment
            if tp in assignment and self._generation.get(tp, 0) == generation:
                offsets[tp] = next_offset
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:  # e.g. partitions moved in a rebalance: re-read there
            log.warning("commit_failed", error=str(exc))

    async def backlog(self) -> int:
        """Records of the assigned partitions not yet handed to relay.

        The log end comes from a ListOffsets request as well as from the last fetch's
        highwater: aiokafka fetches no more of a partition while records of it sit unread
        in its buffer (exactly when delivery stalls), so that highwater stops moving.
        """
        consumer = self._consumer
        fetched = {
            tp: hw for tp in consumer.assignment() if (hw := consumer.highwater(tp)) is not None
        }
        if not fetched:  # no position before the first fetch of a partition
            return 0
        ends = await consumer.end_offsets(list(fetched))
        total = 0
        for tp, highwater in fetched.items():
            end = max(highwater, ends.get(tp) or 0)
            total += max(0, end - await consumer.position(tp))
        return total


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, subscription: KafkaSubscription) -> None:
        self.subscription = subscription

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        await self.subscription._revoke(set(revoked))

    async def on_partitions_assigned(self, assigned: set[Any]) -> None:
        self.subscription._assign(set(assigned))


def kafka_item(message: Any, stream: Stream) -> Item:
    """An aiokafka ``ConsumerRecord`` as a bus item."""
    return Item(
        stream=stream,
        offset=message.offset,
        topic=message.topic,
        key=message.key,
        value=message.value,
        headers=tuple(message.headers or ()),
        timestamp_ms=message.timestamp,
    )


class KafkaRange:
    """A bounded read for replay: from a time or an offset up to the end seen at start."""

    on_revoked: Revoked | None = None  # a bounded read of partitions it assigns itself

    def __init__(self, config: Kafka, topics: Sequence[str], start: RangeStart) -> None:
        self._config = config
        self._consumer: Any = None  # built by start(), as KafkaSubscription's
        self._topics = list(topics)
        self._start = start
        self._end: dict[TopicPartition, int] = {}

    async def start(self) -> None:
        self._consumer = consumer = outside_group(self._config)
        await _started(consumer)
        partitions = [
            TopicPartition(topic, partition)
            for topic in self._topics
            for partition in sorted(await _partitions(consumer, topic))
        ]
        consumer.assign(partitions)
        if not partitions:
            return
        self._end = dict(await consumer.end_offsets(partitions))
        match self._start:
            case Since(ms=ms):
                by_time = await consumer.offsets_for_times(dict.fromkeys(partitions, ms))
                for tp in partitions:
                    found = by_time.get(tp)
                    # Some brokers answer "nothing that late" with a placeholder, not null.
                    end = self._end[tp]
                    start = found.offset if found is not None and found.timestamp >= ms else end
                    consumer.seek(tp, min(start, end))
            case FromOffset(offset=offset):
                beginning = await consumer.beginning_offsets(partitions)
                for tp in partitions:
                    consumer.seek(tp, min(max(offset, beginning[tp]), self._end[tp]))
        self._end = {tp: end for tp, end in self._end.items() if end > 0}

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def fetch(self, max_records: int, wait: float) -> list[Item] | None:
        consumer = self._consumer
        remaining = {tp for tp, end in self._end.items() if await consumer.position(tp) < end}
        if not remaining:
            return None
        batches = await consumer.getmany(
            *remaining, timeout_ms=int(wait * 1000), max_records=max_records
        )
        return [
            kafka_item(message, (tp.topic, tp.partition, 0))
            for tp, messages in batches.items()
            for message in messages
            if message.offset < self._end.get(tp, 0)
        ]

    async def commit(self, positions: dict[Stream, int]) -> None:
        return None

    async def backlog(self) -> int:
        return 0


async def _started(consumer: Any) -> None:
    """Start ``consumer``; one that fails to start is stopped, as its caller closes nothing."""
    try:
        await consumer.start()
    except BaseException:
        await consumer.stop()
        raise


async def _partitions(consumer: Any, topic: str) -> set[int]:
    for _ in range(50):
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return set(partitions)
        await consumer.topics()  # refreshes the cluster metadata
        await asyncio.sleep(0.1)
    return set()
