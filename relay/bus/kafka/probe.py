"""Why a Kafka producer would not start, in words an operator can act on.

A broker without idempotent producers (Tansu, some managed or older brokers) answers
``InitProducerId`` with an error, which aiokafka reports like any other start failure
(``[Error -1] UnknownError``). Retrying never helps, so it is told apart by starting a
producer without idempotence once: if that one starts, the broker lacks the feature.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from relay.bus.base import BusError, BusRefused
from relay.bus.kafka.security import client_options
from relay.config import Kafka


class IdempotenceUnsupported(BusRefused):
    """The broker refuses idempotent producers: a configuration mistake, not an outage."""


def _producer(config: Kafka, *, idempotence: bool) -> Any:
    return AIOKafkaProducer(
        **client_options(config),
        acks="all",
        enable_idempotence=idempotence,
        request_timeout_ms=config.request_timeout_ms,
    )


async def _starts(config: Kafka, *, idempotence: bool) -> bool:
    producer = _producer(config, idempotence=idempotence)
    try:
        await producer.start()
    except KafkaError:
        return False
    finally:
        await producer.stop()
    return True


async def start_failure(config: Kafka, exc: KafkaError) -> BusError:
    """The error to raise for a producer that did not start with ``exc``."""
    if (
        config.idempotence
        and not isinstance(exc, KafkaConnectionError)
        and await _starts(config, idempotence=False)
    ):
        return IdempotenceUnsupported(
            f"the Kafka broker at {','.join(config.servers)} does not support idempotent "
            f"producers (it answered {type(exc).__name__}); set kafka.idempotence: false"
        )
    return BusError(f"cannot connect to Kafka at {config.servers}: {exc}")
