"""One subscriber's delivery loop on the in-memory bus, to a real local HTTP subscriber:
order per key, dead letters, filters and formats, poison records, a bug mid-delivery."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from structlog.testing import capture_logs

from relay.bus import Record
from relay.bus.memory import MemoryBus
from relay.cloudevents import encode, to_binary
from relay.config import Subscriber as SubscriberConfig
from relay.deadletters import DeadLetters
from relay.delivery.sender import Sender
from relay.delivery.tally import Stats
from relay.delivery.worker import SubscriberWorker
from tests.factories import chat_event, records
from tests.subscriber import Subscriber
from tests.support import make_config

EVENTS = "chat.events"
DEAD = "relay.deadletter"


@pytest.fixture
async def bus() -> MemoryBus:
    bus = MemoryBus()
    await bus.start()
    return bus


def configured(subscriber: Subscriber, extra: str = "") -> SubscriberConfig:
    config = make_config(
        f'subscribers: [{{name: sub, url: "{subscriber.url}", start_from: earliest{extra}}}]'
    )
    return config.subscribers[0]


def worker(
    bus: MemoryBus, sub: SubscriberConfig, *, bounded: bool = True, sender: Sender | None = None
) -> SubscriberWorker:
    return SubscriberWorker(
        sub,
        bus.subscribe("relay.sub.sub", [EVENTS], "earliest", bounded=bounded),
        sender or Sender(sub),
        DeadLetters(bus, DEAD),
    )


async def run_to_end(bus: MemoryBus, sub: SubscriberConfig) -> Stats:
    """Deliver everything published so far (a bounded read), then return."""
    return await asyncio.wait_for(worker(bus, sub).run(), 30)


async def test_same_key_in_order_one_at_a_time_other_keys_in_parallel(
    bus: MemoryBus, subscriber: Subscriber
) -> None:
    subscriber.delay = 0.01
    events = [chat_event(key, key * 100 + seq) for seq in range(4) for key in range(6)]
    await bus.publish(records(EVENTS, events))
    stats = await run_to_end(bus, configured(subscriber, ", max_in_flight: 4"))
    assert stats.delivered == len(events)
    arrived = [r.headers["webhook-id"] for r in subscriber.delivered()]
    assert sorted(arrived) == sorted(e.id for e in events)
    for key in range(6):
        sent = [e.id for e in events if e.partitionkey == events[key].partitionkey]
        assert [i for i in arrived if i in sent] == sent
    assert 1 < subscriber.max_in_flight <= 4


async def test_a_rejected_event_is_dead_lettered_with_why_and_the_rest_flow(
    bus: MemoryBus, subscriber: Subscriber
) -> None:
    doomed, later = chat_event(1, 1), chat_event(1, 2)
    subscriber.script = lambda s, body, headers: 400 if headers["webhook-id"] == doomed.id else 200
    await bus.publish(records(EVENTS, [doomed, later]))
    stats = await run_to_end(bus, configured(subscriber))
    assert (stats.delivered, stats.deadlettered) == (1, 1)
    [dead] = bus.records(DEAD)
    headers = dict(dead.headers)
    assert dead.value == encode(doomed) and dead.key == doomed.partitionkey.encode()
    assert headers["relay-reason"] == b"delivery_rejected"
    assert headers["relay-subscriber"] == b"sub"
    assert headers["relay-event-id"] == doomed.id.encode()
    assert headers["relay-attempts"] == b"1" and headers["relay-last-status"] == b"400"
    assert headers["relay-original-topic"] == EVENTS.encode()
    assert headers["relay-original-offset"] == b"1"


async def test_only_matching_events_go_out_and_the_data_format_carries_ce_headers(
    bus: MemoryBus, subscriber: Subscriber
) -> None:
    incoming, outgoing = chat_event(1, 1), chat_event(1, 2, direction="outgoing")
    await bus.publish(records(EVENTS, [outgoing, incoming]))
    sub = configured(
        subscriber, ", format: data, match: {where: {data.message.direction: incoming}}"
    )
    stats = await run_to_end(bus, sub)
    assert stats.delivered == 1
    [got] = subscriber.received
    assert got.headers["Content-Type"] == "application/json"
    assert json.loads(got.body)["message"]["id"] == "1"
    assert got.headers["ce-id"] == incoming.id and got.headers["ce-specversion"] == "1.0"


async def test_a_binary_mode_record_goes_out_structured_and_is_dead_lettered_structured(
    bus: MemoryBus, subscriber: Subscriber
) -> None:
    event = chat_event(1, 1)
    value, headers = to_binary(event)
    await bus.publish([Record(topic=EVENTS, value=value, key=b"k", headers=headers)])
    subscriber.script = lambda s, body, headers: 422
    await run_to_end(bus, configured(subscriber, ", match: {where: {data.message.id: '1'}}"))
    [got] = subscriber.received
    assert got.headers["Content-Type"] == "application/cloudevents+json"
    assert json.loads(got.body) == json.loads(encode(event))
    [dead] = bus.records(DEAD)
    assert dead.value == encode(event)


async def test_poison_records_are_skipped_and_committed_past(
    bus: MemoryBus, subscriber: Subscriber
) -> None:
    poison = [b"\xff\xfe not json", b'{"specversion": "1.0", "id": 5}', b"[1, 2, 3]"]
    await bus.publish([Record(topic=EVENTS, value=value, key=b"k") for value in poison])
    good = chat_event(1, 1)
    await bus.publish(records(EVENTS, [good]))
    live = worker(bus, configured(subscriber), bounded=False)
    running = asyncio.create_task(live.run())
    await subscriber.wait_for(lambda s: len(s.delivered()) == 1)
    live.stop_reading(1.0)
    stats = await asyncio.wait_for(running, 10)
    assert (stats.skipped, stats.delivered) == (3, 1)
    assert bus.positions["relay.sub.sub"] == 4  # the next run starts after all four


async def test_a_bug_while_delivering_dead_letters_the_event_and_the_worker_carries_on(
    bus: MemoryBus, subscriber: Subscriber
) -> None:
    """The bug is stood in for by a sender that raises for one event (nothing else faked)."""
    events = [chat_event(1, n) for n in range(3)]
    doomed = events[1].id
    sub = configured(subscriber)

    class Buggy(Sender):
        async def deliver(self, event_id: str, *args: Any, **kwargs: Any) -> Any:
            if event_id == doomed:
                raise KeyError("a bug")
            return await super().deliver(event_id, *args, **kwargs)

    await bus.publish(records(EVENTS, events))
    with capture_logs() as logs:  # (also spares rendering the traceback: seconds under load)
        stats = await asyncio.wait_for(worker(bus, sub, sender=Buggy(sub)).run(), 30)
    assert (stats.delivered, stats.deadlettered) == (2, 1)
    [crashed] = [line for line in logs if line["event"] == "delivery_crashed"]
    assert (crashed["subscriber"], crashed["event_id"]) == ("sub", doomed)
    assert crashed["log_level"] == "error" and crashed["exc_info"] is True
    assert [r.headers["webhook-id"] for r in subscriber.delivered()] == [
        events[0].id,
        events[2].id,
    ]
    [dead] = bus.records(DEAD)
    headers = dict(dead.headers)
    assert headers["relay-reason"] == b"delivery_crashed"
    assert b"a bug" in headers["relay-error"]
    assert headers["relay-event-id"] == doomed.encode()
