"""What the admin API and the console do, on real parts without HTTP: the embedded log
written through the pipeline, the index kept by its real feed, a real local subscriber.

``integration/test_admin_api.py`` drives the same operations over HTTP, on Kafka too.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from relay.admin.ops import BadRequest, NoSuchSubscriber, NotFound, NotHere, Operations
from relay.attempts import Attempt, AttemptLog
from relay.bus.embedded import LOG_FILE, EmbeddedLog, delete_through, read
from relay.config import Config, parse
from relay.deadletters import DeadLetters, delivery_record
from relay.delivery.service import DeliveryService
from relay.index import Indexer
from relay.index.store import Filters
from relay.ingress.state import live_for
from relay.live import Current
from relay.pipeline import Accepted, Pipeline
from relay.providers import Inbound
from tests.factories import chatwoot_message
from tests.subscriber import Subscriber
from tests.support import poll_until


def configured(data_dir: Path, url: str) -> Config:
    return parse(
        f"""\
data_dir: {data_dir}
admin: {{token: admin-token-0123456789abcdef}}
sources: {{nexloo: {{provider: chatwoot, tokens: [t0k3n-0123456789abcdef]}}}}
subscribers:
  - {{name: crm, url: '{url.replace("http://", "http://user:pw@")}?key=s3cr3t',
     start_from: earliest}}
  - {{name: statuses, url: '{url}', start_from: earliest,
     match: {{type: 'conversation.status_changed'}}}}
""",
        env={},
    )


@dataclass
class World:
    config: Config
    bus: EmbeddedLog
    indexer: Indexer
    delivery: DeliveryService
    ops: Operations
    ids: list[str]
    """The event ids of messages 1 and 2, in that order."""

    async def dead_letter(self, event_id: str, subscriber: str = "crm") -> None:
        """A failed delivery of this event, written as delivery writes one."""
        path = self.config.data_path / LOG_FILE
        [item] = [
            i for i in read(path, topic=self.config.topics.events) if event_id.encode() in i.value
        ]
        record = delivery_record(
            self.config.topics.deadletter,
            subscriber,
            item,
            event_id,
            reason="delivery_exhausted",
            attempts=2,
            status=500,
            error="HTTP 500: nope",
        )
        await DeadLetters(self.bus, self.config.topics.deadletter).publish(record)

    async def indexed(self) -> None:
        """Wait until the index has read everything on the log so far."""
        end = read(self.config.data_path / LOG_FILE)[-1].offset
        await poll_until(lambda: self.indexer.index.positions().get(("", 0), 0) > end)


@pytest.fixture
async def world(tmp_path: Path, subscriber: Subscriber) -> AsyncIterator[World]:
    config = configured(tmp_path / "var", subscriber.url)
    bus = EmbeddedLog(config.data_path)
    await bus.start()
    pipeline = Pipeline(bus, Current(live_for(config)), config.topics)
    ids = []
    for n in (1, 2):
        inbound = Inbound(
            source="nexloo",
            provider="chatwoot",
            body=chatwoot_message(n),
            received_at="2026-01-01T00:00:00.000Z",
            request_id=f"req-{n}",
            content_type="application/json",
        )
        outcome = await pipeline.accept(inbound)
        assert isinstance(outcome, Accepted)
        ids += outcome.ids
    indexer = Indexer.for_config(config)
    await indexer.start()
    delivery = DeliveryService(config, bus)
    ops = Operations(lambda: config, delivery, indexer)
    world = World(config, bus, indexer, delivery, ops, ids)
    await world.indexed()
    try:
        yield world
    finally:
        await ops.close()
        await indexer.close()
        await bus.close()


async def test_an_event_is_shown_with_its_raw_body_and_its_dead_letters(world: World) -> None:
    await world.dead_letter(world.ids[0])
    await world.indexed()
    shown = await world.ops.event(world.ids[0])
    assert shown["indexed"].id == shown["event"]["id"] == world.ids[0]
    raw = shown["raw"]
    assert (raw["matched_by"], raw["request_id"], raw["truncated"]) == ("adjacent", "req-1", False)
    assert json.loads(raw["body"]) == json.loads(chatwoot_message(1))
    assert raw["content_type"] == "application/json"
    [dead] = shown["deadletters"]
    assert (dead.subscriber, dead.reason) == ("crm", "delivery_exhausted")
    with pytest.raises(NotFound, match="no event 'nope' in the index"):
        await world.ops.event("nope")


async def test_a_search_with_a_cursor_it_did_not_give_is_a_bad_request(world: World) -> None:
    page = await world.ops.search(Filters(), 1, None)
    assert [row.id for row in page.events] == [world.ids[1]]  # newest first
    assert page.next_cursor is not None
    older = await world.ops.search(Filters(), 1, page.next_cursor)
    assert [row.id for row in older.events] == [world.ids[0]]
    with pytest.raises(BadRequest):
        await world.ops.search(Filters(), 1, "not-a-cursor")


async def test_a_redrive_sends_each_event_once_and_not_those_delivered_since(
    world: World, subscriber: Subscriber
) -> None:
    first, second = world.ids
    await world.dead_letter(first)
    await world.dead_letter(first)  # failed twice: redriven once
    await world.dead_letter(second)
    await world.dead_letter(second, subscriber="statuses")  # another subscriber's
    delivered_since = Attempt(
        event_id=second,
        subscriber="crm",
        attempt=1,
        at_ms=int(time.time() * 1000) + 1000,
        duration_ms=1.0,
        outcome="delivered",
        status=200,
    )
    attempts = AttemptLog(world.bus, world.config.topics.attempts)
    attempts.record(delivered_since)
    await attempts.flush()
    await world.indexed()
    assert await world.ops.redrive("crm", since_ms=0) == 1
    await poll_until(subscriber.delivered)
    await asyncio.sleep(0.2)  # nothing more comes
    assert [r.headers["webhook-id"] for r in subscriber.delivered()] == [first]


async def test_a_replay_is_refused_for_a_subscriber_the_event_does_not_match(
    world: World, subscriber: Subscriber
) -> None:
    with pytest.raises(BadRequest, match="does not match subscriber 'statuses'"):
        await world.ops.replay(world.ids[0], "statuses")
    await world.ops.replay(world.ids[0], "crm")
    await poll_until(subscriber.delivered)
    assert [r.headers["webhook-id"] for r in subscriber.delivered()] == [world.ids[0]]


async def test_a_replay_of_an_event_retention_removed_says_so(world: World) -> None:
    delete_through(world.config.data_path / LOG_FILE, 10**9)
    with pytest.raises(NotFound, match="no longer on the bus"):
        await world.ops.replay(world.ids[0], "crm")


async def test_an_unknown_subscriber_is_not_found(world: World) -> None:
    with pytest.raises(NotFound, match="no subscriber named 'nobody'"):
        await world.ops.redrive("nobody", since_ms=0)
    with pytest.raises(NotFound):
        await world.ops.replay(world.ids[0], "nobody")
    with pytest.raises(NotFound):
        await world.ops.disable("nobody")
    with pytest.raises(NoSuchSubscriber) as unknown:
        await world.ops.enable("nobody")
    assert unknown.value.code == "unknown_subscriber"


async def test_a_process_without_delivery_or_index_says_what_it_cannot_do(
    world: World,
) -> None:
    ingress_only = Operations(lambda: world.config, None, None)
    with pytest.raises(NotHere, match="keeps no index"):
        await ingress_only.search(Filters(), 10, None)
    with pytest.raises(NotHere, match="does not deliver"):
        await ingress_only.redrive("crm", since_ms=0)
    with pytest.raises(NotHere, match="does not deliver"):
        await ingress_only.enable("crm")
    [crm, statuses] = await ingress_only.subscribers()  # what the configuration says
    assert crm["url"] == f"{statuses['url']}?key=***"  # no credentials, no query values
    assert (crm["breaker"], crm["lag"], crm["delivered"]) == (None, None, 0)
    [nexloo] = await ingress_only.sources()
    assert (nexloo["name"], nexloo["provider"], nexloo["last_seen_ms"]) == (
        "nexloo",
        "chatwoot",
        None,
    )


async def test_a_running_subscribers_lag_counts_what_it_has_not_delivered(
    world: World, subscriber: Subscriber
) -> None:
    subscriber.delay = 30  # both events stay in flight
    await world.delivery.start()
    try:
        await poll_until(lambda: subscriber.in_flight == 2)
        shown = {s["name"]: s for s in await world.ops.subscribers()}
        assert shown["crm"]["lag"] == 2 and shown["crm"]["breaker"] == "closed"
        assert shown["statuses"]["lag"] == 0  # matches neither event: nothing outstanding
    finally:
        await world.delivery.stop(grace=0)
