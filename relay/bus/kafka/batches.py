"""The producer's accumulator: per-partition batches, the requests waiting on them, and the
partitioner (Kafka's default: murmur2 of the key), kept apart from :class:`KafkaBus`'s flow."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from relay.bus.base import BusError
from relay.bus.kafka.murmur2 import murmur2


def default_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives ``key`` (murmur2, positive, modulo)."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


class Waiter:
    """One ``publish`` call: done when all the batches holding its records are."""

    __slots__ = ("future", "remaining")

    def __init__(self, future: asyncio.Future[None]) -> None:
        self.future = future
        self.remaining = 0


class Batch:
    __slots__ = ("builder", "last", "sent_at", "size", "waiters")

    def __init__(self, builder: Any) -> None:
        self.builder = builder
        self.waiters: list[Waiter] = []
        self.last: Waiter | None = None
        self.size = 0
        self.sent_at = 0.0
        """When the flusher handed it to the producer (``time.monotonic()``, for tracing)."""


class Partition:
    """A topic-partition's batches: the open one, sealed ones, and the one in flight."""

    __slots__ = ("in_flight", "open", "partition", "sealed", "timer", "topic")

    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition
        self.open: Batch | None = None
        self.sealed: deque[Batch] = deque()
        self.in_flight: Batch | None = None
        self.timer: asyncio.TimerHandle | None = None

    def has_pending(self) -> bool:
        return self.open is not None or bool(self.sealed)


class Topic:
    __slots__ = ("expires", "indexes", "next_null", "partitions")

    def __init__(self, count: int, expires: float, indexes: dict[bytes, int]) -> None:
        self.partitions: list[Partition | None] = [None] * count
        self.expires = expires
        self.next_null = 0
        self.indexes = indexes
        """key → partition, this topic's (dropped with it when its partition count changes)."""


def fail(batch: Batch, error: BusError) -> None:
    """Every request waiting on ``batch`` gets ``error``."""
    for waiter in batch.waiters:
        if not waiter.future.done():
            waiter.future.set_exception(error)
