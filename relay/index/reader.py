"""Reading records back from the bus by their place: an event's JSON, its raw body, a dead
letter. The index stores places; the bus keeps the bytes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from aiokafka import TopicPartition

from relay.bus import Item
from relay.bus.embedded import LOG_FILE, read_at
from relay.bus.kafka.consumer import kafka_item, outside_group
from relay.config import Config, Kafka

Place = tuple[str, int, int]
"""(topic, partition, offset)"""
WAIT_SECONDS = 5.0


class RecordReader:
    def __init__(self, config: Config) -> None:
        self.config = config

    async def read(self, topic: str, partition: int, offset: int) -> Item | None:
        [record] = await self.read_many([(topic, partition, offset)])
        return record

    async def read_many(self, places: Sequence[Place]) -> list[Item | None]:
        """In the order asked; None where retention removed the record."""
        if not places:
            return []
        if self.config.kafka is None:
            return await asyncio.to_thread(self._read_embedded, [p[2] for p in places])
        return await self._read_kafka(self.config.kafka, places)

    def _read_embedded(self, offsets: list[int]) -> list[Item | None]:
        found = read_at(self.config.data_path / LOG_FILE, offsets)
        return found

    async def _read_kafka(self, kafka: Kafka, places: Sequence[Place]) -> list[Item | None]:
        """One consumer outside any group for the lot, one fetch per record."""
        consumer = outside_group(kafka)
        await consumer.start()
        try:
            consumer.assign(list({TopicPartition(t, p) for t, p, _ in places}))
            return [await _one(consumer, TopicPartition(t, p), o) for t, p, o in places]
        finally:
            await consumer.stop()


async def _one(consumer: Any, tp: TopicPartition, offset: int) -> Item | None:
    consumer.seek(tp, offset)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(WAIT_SECONDS):
            while True:
                batches = await consumer.getmany(tp, timeout_ms=500, max_records=1)
                for message in batches.get(tp, []):
                    if message.offset != offset:
                        return None  # deleted by retention: the next one came
                    return kafka_item(message, (tp.topic, tp.partition, 0))
    return None
