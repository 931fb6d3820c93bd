"""The Kafka readers hold a consumer only between start() and close(): one built and dropped
(a worker whose sender failed to start, a replay refused before reading), or one whose start
failed (no broker), leaves no unclosed AIOKafkaConsumer behind. No broker is needed: the
bootstrap address is a closed loopback port."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from aiokafka.errors import KafkaConnectionError

from relay.bus import FromOffset, Subscription
from relay.bus.kafka.consumer import KafkaRange, KafkaSubscription
from relay.config import Kafka
from tests.support import free_port

Reader = Callable[[Kafka], Subscription]

READERS: dict[str, Reader] = {
    "subscription": lambda kafka: KafkaSubscription(kafka, "relay.sub.crm", ["events"], "latest"),
    "range": lambda kafka: KafkaRange(kafka, ["events"], FromOffset(0)),
}


def nowhere() -> Kafka:
    return Kafka(bootstrap_servers=f"127.0.0.1:{free_port()}", request_timeout_ms=1000)


@contextmanager
def no_unclosed_consumer() -> Iterator[None]:
    """Fails if a consumer is collected unclosed in the block (dropped objects are freed at
    once, or by the collector run at its end)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield
        gc.collect()
    assert [str(w.message) for w in caught if "AIOKafkaConsumer" in str(w.message)] == []


@pytest.mark.parametrize("make", READERS.values(), ids=READERS.keys())
async def test_a_reader_built_and_dropped_leaves_no_consumer(make: Reader) -> None:
    gc.collect()  # whatever an earlier test left is not this test's
    with no_unclosed_consumer():
        reader = make(nowhere())
        del reader


@pytest.mark.parametrize("make", READERS.values(), ids=READERS.keys())
async def test_closing_a_reader_never_started_does_nothing(make: Reader) -> None:
    reader = make(nowhere())
    await reader.close()
    await reader.close()


@pytest.mark.parametrize("make", READERS.values(), ids=READERS.keys())
async def test_a_start_that_fails_leaves_no_consumer(make: Reader) -> None:
    gc.collect()
    with no_unclosed_consumer():
        reader = make(nowhere())
        with pytest.raises(KafkaConnectionError):
            await reader.start()
        del reader  # the worker does not close a reader whose start raised
