"""Delivery promises of DESIGN §6, each checked so that breaking it fails the test.

- one in flight per key, order per key, under random subscriber delays: the subscriber
  counts requests per ``partitionkey`` when they *arrive*, so two concurrent deliveries
  of one key are seen even when they would finish in order;
- key rotation through a real subscriber configured with ``secrets:`` (and ``secret`` +
  ``secrets``): every configured secret signs;
- ``relay_consumer_lag`` counts the backlog not yet fetched, so it grows while reading
  is stalled.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import standardwebhooks
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from relay.bus import Bus
from relay.bus.embedded import EmbeddedLog
from relay.bus.kafka import KafkaBus
from relay.config import Config
from relay.delivery.service import DeliveryService
from relay.metrics import exposition
from tests.broker import Broker
from tests.factories import chat_event, records
from tests.subscriber import Subscriber
from tests.support import make_config, poll_until, unique

pytestmark = pytest.mark.integration

OLD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEW_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"


@dataclass
class KeyedSubscriber:
    """A real HTTP subscriber that watches each key as requests arrive.

    Each request is recorded when it *arrives* (before its random delay), and the number
    of requests of its key in flight at that moment is kept: order and concurrency per
    key are seen as relay sends them, not as they happen to complete.
    """

    seed: int
    max_delay: float = 0.02
    arrivals: dict[str, list[int]] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)
    max_in_flight_per_key: int = 0
    max_in_flight: int = 0
    server: TestServer | None = None
    _total_in_flight: int = 0
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/hook"))

    def count(self) -> int:
        return sum(len(messages) for messages in self.arrivals.values())

    async def handle(self, request: web.Request) -> web.Response:
        event = json.loads(await request.read())
        key = event["partitionkey"]
        self.arrivals.setdefault(key, []).append(int(event["data"]["message"]["id"]))
        self.in_flight[key] = self.in_flight.get(key, 0) + 1
        self._total_in_flight += 1
        self.max_in_flight_per_key = max(self.max_in_flight_per_key, self.in_flight[key])
        self.max_in_flight = max(self.max_in_flight, self._total_in_flight)
        try:
            await asyncio.sleep(self._random.uniform(0, self.max_delay))
        finally:
            self.in_flight[key] -= 1
            self._total_in_flight -= 1
        async with self._changed:
            self._changed.notify_all()
        return web.Response(status=200, text="ok")

    async def wait_for(self, predicate: Callable[[], bool], within: float = 30.0) -> None:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(predicate)

    async def start(self) -> KeyedSubscriber:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()


@dataclass
class Setup:
    """A running bus and the configuration of one subscriber reading ``topic`` from it."""

    bus: Bus
    topic: str
    config: Callable[[str], Config]


@pytest.fixture(params=["embedded", "kafka"])
async def setup(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Setup]:
    topic = unique("promise.events")
    dead = unique("promise.dead")
    if request.param == "embedded":
        bus: Bus = EmbeddedLog(tmp_path)
        prelude = f"data_dir: {tmp_path}"
    else:
        broker: Broker = request.getfixturevalue("broker")
        prelude = (
            f"data_dir: {tmp_path}\n"
            f'kafka: {{bootstrap_servers: "{broker.bootstrap}", idempotence: false,\n'
            "        session_timeout_ms: 1000, heartbeat_interval_ms: 300}"
        )
        config = make_config(prelude)
        assert config.kafka is not None
        bus = KafkaBus(config.kafka)

    def config_for(subscriber: str) -> Config:
        return make_config(
            f"{prelude}\ntopics: {{events: {topic}, deadletter: {dead}}}\n"
            f"subscribers:\n  - {subscriber}\n"
        )

    await bus.start()
    try:
        yield Setup(bus, topic, config_for)
    finally:
        await bus.close()


async def running(config: Config, bus: Bus) -> DeliveryService:
    service = DeliveryService(config, bus)
    await service.start()
    return service


async def test_one_in_flight_per_key_and_order_per_key_under_random_delays(
    setup: Setup,
) -> None:
    keys, per_key = 12, 8
    subscriber = await KeyedSubscriber(seed=18).start()
    config = setup.config(
        f'{{name: ordered, url: "{subscriber.url}", start_from: earliest, max_in_flight: 8}}'
    )
    # interleaved: every key has events waiting while the others are in flight
    events = [chat_event(key, key * 100 + seq) for seq in range(per_key) for key in range(keys)]
    await setup.bus.publish(records(setup.topic, events))
    service = await running(config, setup.bus)
    try:
        await subscriber.wait_for(lambda: subscriber.count() == len(events))
    finally:
        await service.stop()
        await subscriber.close()
    assert subscriber.max_in_flight_per_key == 1
    assert subscriber.max_in_flight > 1  # keys do go out in parallel
    assert len(subscriber.arrivals) == keys
    for key, arrived in subscriber.arrivals.items():
        conversation = int(key.split(":")[1])
        assert arrived == [conversation * 100 + seq for seq in range(per_key)], key


@pytest.mark.parametrize(
    "secrets",
    [
        f"secrets: [{OLD_SECRET}, {NEW_SECRET}]",
        f"secret: {OLD_SECRET}, secrets: [{NEW_SECRET}]",
    ],
    ids=["secrets", "secret+secrets"],
)
async def test_every_configured_secret_signs_during_rotation(tmp_path: Path, secrets: str) -> None:
    """A subscriber that holds either secret, old or new, verifies every delivery."""
    subscriber = await Subscriber().start()
    config = make_config(
        f"""
data_dir: {tmp_path}
subscribers:
  - {{name: rotating, url: "{subscriber.url}", start_from: earliest, {secrets}}}
"""
    )
    bus = EmbeddedLog(tmp_path)
    await bus.start()
    events = [chat_event(1, 1), chat_event(2, 2)]
    try:
        await bus.publish(records("chat.events", events))
        service = await running(config, bus)
        try:
            await subscriber.wait_for(lambda s: len(s.delivered()) == len(events))
        finally:
            await service.stop()
    finally:
        await bus.close()
        await subscriber.close()
    for got, event in zip(subscriber.delivered(), events, strict=True):
        assert len(got.headers["webhook-signature"].split()) == 2  # v1,<old> v1,<new>
        for secret in (OLD_SECRET, NEW_SECRET):
            verified = standardwebhooks.Webhook(secret).verify(got.body, got.headers)
            assert verified["id"] == event.id


def lag(subscriber: str) -> float | None:
    for family in text_string_to_metric_families(exposition()[0].decode()):
        for sample in family.samples:
            if sample.name == "relay_consumer_lag" and sample.labels == {"subscriber": subscriber}:
                return float(sample.value)
    return None


async def wait_for_lag(subscriber: str, at_least: float, within: float = 20.0) -> float:
    """Poll the lag gauge (refreshed about once a second) until it reaches ``at_least``."""
    seen: list[float | None] = [None]

    def reached() -> bool:
        seen[0] = lag(subscriber)
        return seen[0] is not None and seen[0] >= at_least

    try:
        await poll_until(reached, within)
    except AssertionError:
        raise AssertionError(f"the lag stayed at {seen[0]}, never reached {at_least}") from None
    assert seen[0] is not None
    return seen[0]


async def test_lag_grows_with_the_backlog_not_yet_fetched(setup: Setup) -> None:
    """A stalled subscriber stops reading once its buffer is full; the lag must keep growing.

    On Kafka the unfetched part comes from ListOffsets (aiokafka fetches nothing more of a
    partition while its buffer holds records of it). Tansu answers ListOffsets with the last
    batch's base offset + 1, which is the log end only when that batch holds one record, so
    the records published while stalled go one per batch, as webhooks arrive.
    """
    release = asyncio.Event()

    async def hang(s: Subscriber, body: bytes, headers: dict[str, str]) -> int:
        await release.wait()
        return 200

    subscriber = await Subscriber(script=hang).start()
    name = unique("lagging").replace(".", "-")
    config = setup.config(
        f'{{name: {name}, url: "{subscriber.url}", start_from: earliest, max_in_flight: 1, '
        "timeout: 60s}"
    )
    service = await running(config, setup.bus)
    try:
        first = [chat_event(1, n) for n in range(300)]  # one key: one in flight, rest buffered
        await setup.bus.publish(records(setup.topic, first))
        worker = service.workers[name]
        await poll_until(
            lambda: worker.buffered >= worker.buffer_limit, what="a full buffer (reading stops)"
        )
        assert worker.buffer_limit < len(first)
        await wait_for_lag(name, len(first))
        more = [chat_event(1, n) for n in range(300, 500)]  # never fetched while stalled
        for event in more:
            await setup.bus.publish(records(setup.topic, [event]))
        # the gauge is refreshed once a second: a few refreshes are plenty
        assert await wait_for_lag(name, len(first) + len(more)) == len(first) + len(more)
        assert worker.buffered == worker.buffer_limit  # still not fetched: the lag counted it
    finally:
        release.set()
        await service.stop(grace=0)
        await subscriber.close()
