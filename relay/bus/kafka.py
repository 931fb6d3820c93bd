"""Kafka through aiokafka: ``acks=all``, idempotence switchable, one flush per request."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from relay.bus.base import BusError, Record
from relay.config import Kafka


class KafkaBus:
    name = "kafka"

    def __init__(self, config: Kafka) -> None:
        self.config = config
        self._producer: AIOKafkaProducer | None = None

    def _make_producer(self) -> Any:
        return AIOKafkaProducer(
            bootstrap_servers=self.config.servers,
            client_id=self.config.client_id,
            acks="all",
            enable_idempotence=self.config.idempotence,
            compression_type=self.config.compression,
            linger_ms=self.config.linger_ms,
            request_timeout_ms=self.config.request_timeout_ms,
            max_batch_size=1024 * 1024,
        )

    async def start(self) -> None:
        producer = self._make_producer()
        try:
            await producer.start()
        except KafkaError as exc:
            await producer.stop()
            raise BusError(f"cannot connect to Kafka at {self.config.servers}: {exc}") from exc
        self._producer = producer

    async def close(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await producer.stop()  # flushes what is pending

    def ready(self) -> bool:
        return self._producer is not None

    async def publish(self, records: Sequence[Record]) -> None:
        producer = self._producer
        if producer is None:
            raise BusError("the Kafka producer is not running")
        try:
            futures = [
                await producer.send(
                    r.topic, value=r.value, key=r.key, headers=list(r.headers) or None
                )
                for r in records
            ]
            await asyncio.gather(*futures)
        except KafkaError as exc:
            raise BusError(f"Kafka did not acknowledge: {exc}") from exc
