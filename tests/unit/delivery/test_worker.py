"""One subscriber's delivery loop on the in-memory bus, to a real local HTTP subscriber:
order per key, dead letters, filters and formats, poison records, a bug mid-delivery."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from relay.attempts import AttemptLog, decode_attempt
from relay.bus import Record
from relay.bus.memory import MemoryBus
from relay.cloudevents import encode, to_binary
from relay.config import Subscriber as SubscriberConfig
from relay.deadletters import DeadLetters
from relay.delivery.sender import Sender
from relay.delivery.state import DeliveryState
from relay.delivery.tally import Stats
from relay.delivery.worker import SubscriberWorker
from tests.factories import chat_event, records
from tests.subscriber import Subscriber
from tests.support import make_config, unique

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
    assert headers["relay-attempts"] == b"0"  # no attempt was made


def sample(metric: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(metric, labels)


def named(subscriber: Subscriber, extra: str = "") -> SubscriberConfig:
    """A subscriber of its own name: the counters below are the process's."""
    name = unique("crm")
    config = make_config(
        f'subscribers: [{{name: {name}, url: "{subscriber.url}", start_from: earliest{extra}}}]'
    )
    return config.subscribers[0]


async def test_each_outcome_is_counted_and_logged_for_an_operator(
    bus: MemoryBus, subscriber: Subscriber
) -> None:
    good, doomed = chat_event(1, 1), chat_event(2, 2)
    subscriber.script = lambda s, body, headers: 422 if headers["webhook-id"] == doomed.id else 200
    await bus.publish([Record(topic=EVENTS, value=b"[1, 2, 3]", key=b"k")])
    await bus.publish(records(EVENTS, [good, doomed]))
    sub = named(subscriber)
    with capture_logs() as logs:
        stats = await run_to_end(bus, sub)
    assert (stats.delivered, stats.deadlettered, stats.skipped) == (1, 1, 1)
    name = sub.name
    assert sample("relay_deliveries_total", subscriber=name, outcome="delivered") == 1
    assert sample("relay_deliveries_total", subscriber=name, outcome="deadlettered") == 1
    assert sample("relay_delivery_attempts_total", subscriber=name, outcome="delivered") == 1
    skipped = sample("relay_delivery_skipped_total", subscriber=name, reason="not_a_cloudevent")
    assert skipped == 1
    assert sample("relay_delivery_seconds_count", subscriber=name) == 2
    lines = [line for line in logs if line["event"] in ("record_skipped", "delivery_deadlettered")]
    assert lines == [
        {
            "event": "record_skipped",
            "log_level": "warning",
            "subscriber": name,
            "reason": "not_a_cloudevent",
            "topic": EVENTS,
            "offset": 1,
            "error": "ValidationError: Expected `object`, got `array`",
        },
        {
            "event": "delivery_deadlettered",
            "log_level": "warning",
            "subscriber": name,
            "event_id": doomed.id,
            "reason": "delivery_rejected",
            "attempts": 1,
            "status": 422,
            "error": "HTTP 422: nope",
        },
    ]


async def test_a_live_worker_publishes_its_lag_and_circuit_gauges(subscriber: Subscriber) -> None:
    bus = MemoryBus()
    quiet, live = named(subscriber), named(subscriber)
    for sub, is_live in ((quiet, False), (live, True)):
        SubscriberWorker(
            sub,
            bus.subscribe("relay.sub.x", [EVENTS], "earliest"),
            Sender(sub),
            DeadLetters(bus, DEAD),
            live=is_live,
        )
    assert sample("relay_consumer_lag", subscriber=live.name) == 0
    assert sample("relay_circuit_state", subscriber=live.name) == 0
    assert sample("relay_consumer_lag", subscriber=quiet.name) is None
    assert sample("relay_circuit_state", subscriber=quiet.name) is None


async def test_the_data_format_alone_reads_the_whole_event(
    bus: MemoryBus, subscriber: Subscriber
) -> None:
    event = chat_event(1, 1)
    await bus.publish(records(EVENTS, [event]))
    stats = await run_to_end(bus, configured(subscriber, ", format: data"))
    assert stats.delivered == 1
    [got] = subscriber.received
    assert json.loads(got.body)["message"]["id"] == "1" and got.headers["ce-id"] == event.id


async def test_stored_attempts_and_the_attempt_log_reach_the_deliveries(
    tmp_path: Path, bus: MemoryBus, subscriber: Subscriber
) -> None:
    event = chat_event(1, 1)
    subscriber.script = lambda s, body, headers: 422
    await bus.publish(records(EVENTS, [event]))
    sub = configured(subscriber, ", retry: {max_attempts: 3}")
    state = DeliveryState(tmp_path)
    state.record_attempts(sub.name, event.id, 2)  # two attempts made before a restart
    log = AttemptLog(bus, "attempts")
    running = SubscriberWorker(
        sub,
        bus.subscribe("relay.sub.sub", [EVENTS], "earliest", bounded=True),
        Sender(sub),
        DeadLetters(bus, DEAD),
        state=state,
        attempts=log,
        replay=True,
    )
    await asyncio.wait_for(running.run(), 30)
    [dead] = bus.records(DEAD)
    assert dict(dead.headers)["relay-attempts"] == b"3"  # 2 before, 1 now
    assert state.attempts(sub.name) == {}  # settled
    await log.flush()
    [entry] = [decode_attempt(item.value) for item in bus.records("attempts")]
    assert (entry.attempt, entry.outcome, entry.replay) == (3, "deadlettered", True)


async def test_a_crash_whose_dead_letter_fails_too_is_skipped_loudly(
    subscriber: Subscriber,
) -> None:
    bus = MemoryBus()
    await bus.start()
    events = [chat_event(1, 1), chat_event(2, 2)]
    await bus.publish(records(EVENTS, events))
    sub = named(subscriber)

    class Buggy(Sender):
        async def deliver(self, event_id: str, *args: Any, **kwargs: Any) -> Any:
            raise KeyError("a bug")

    class Broken(DeadLetters):  # a bug on the dead-letter path too (not a refused write)
        async def publish(self, record: Record) -> None:
            raise ValueError("another bug")

    crashing = SubscriberWorker(
        sub,
        bus.subscribe("relay.sub.x", [EVENTS], "earliest", bounded=True),
        Buggy(sub),
        Broken(bus, DEAD),
    )
    with capture_logs() as logs:
        stats = await asyncio.wait_for(crashing.run(), 30)
    assert (stats.skipped, stats.deadlettered) == (2, 0)
    assert sample("relay_delivery_skipped_total", subscriber=sub.name, reason="crashed") == 2
    failed = [line for line in logs if line["event"] == "deadletter_failed"]
    assert sorted((f["event_id"], f["log_level"], f["subscriber"]) for f in failed) == sorted(
        (e.id, "error", sub.name) for e in events
    )


async def test_every_dead_letter_is_counted(bus: MemoryBus, subscriber: Subscriber) -> None:
    subscriber.script = lambda s, body, headers: 422
    await bus.publish(records(EVENTS, [chat_event(k, k) for k in range(3)]))
    sub = named(subscriber)
    stats = await run_to_end(bus, sub)
    assert stats.deadlettered == 3 and len(bus.records(DEAD)) == 3
    assert sample("relay_deliveries_total", subscriber=sub.name, outcome="deadlettered") == 3


async def test_an_event_a_predicate_cannot_read_is_skipped_logged_and_committed_past(
    bus: MemoryBus, subscriber: Subscriber
) -> None:
    """The predicate's bug is stood in for by a matcher that raises for one event."""
    doomed, good = chat_event(1, 1), chat_event(2, 2)
    await bus.publish(records(EVENTS, [doomed, good]))
    sub = named(subscriber)
    running = worker(bus, sub)
    matcher = running.matcher

    def reading(event: Any) -> bool:
        if event.id == doomed.id:
            raise TypeError("cannot compare")
        return matcher(event)

    running.matcher = reading  # type: ignore[assignment]
    with capture_logs() as logs:
        stats = await asyncio.wait_for(running.run(), 30)
    assert (stats.skipped, stats.delivered) == (1, 1)
    assert [r.headers["webhook-id"] for r in subscriber.delivered()] == [good.id]
    assert [line for line in logs if line["event"] == "record_skipped"] == [
        {
            "event": "record_skipped",
            "log_level": "warning",
            "subscriber": sub.name,
            "reason": "unmatchable",
            "topic": EVENTS,
            "offset": 1,
            "error": "TypeError: cannot compare",
        }
    ]
    skipped = sample("relay_delivery_skipped_total", subscriber=sub.name, reason="unmatchable")
    assert skipped == 1


async def test_a_structured_record_read_whole_goes_out_byte_for_byte(
    bus: MemoryBus, subscriber: Subscriber
) -> None:
    event = chat_event(1, 1)
    value = json.dumps(json.loads(encode(event)), indent=2).encode()  # not as relay encodes
    await bus.publish([Record(topic=EVENTS, value=value, key=b"k")])
    subscriber.script = lambda s, body, headers: 422
    await run_to_end(bus, configured(subscriber, ", match: {where: {data.message.id: '1'}}"))
    [got] = subscriber.received
    assert got.body == value
    [dead] = bus.records(DEAD)
    assert dead.value == value


async def test_stored_attempts_count_only_for_their_own_event_and_retries_are_logged(
    tmp_path: Path, bus: MemoryBus, subscriber: Subscriber
) -> None:
    stored, fresh = chat_event(1, 1), chat_event(2, 2)
    subscriber.script = lambda s, body, headers: 422 if headers["webhook-id"] == stored.id else 503
    await bus.publish(records(EVENTS, [fresh, stored]))  # fresh read while stored is kept
    sub = configured(subscriber, ", retry: {max_attempts: 3, initial: 10ms, max: 10ms}")
    state = DeliveryState(tmp_path)
    state.record_attempts(sub.name, stored.id, 2)
    log = AttemptLog(bus, "attempts")
    running = SubscriberWorker(
        sub,
        bus.subscribe("relay.sub.sub", [EVENTS], "earliest", bounded=True),
        Sender(sub),
        DeadLetters(bus, DEAD),
        state=state,
        attempts=log,
    )
    await asyncio.wait_for(running.run(), 30)
    attempts = {
        dict(dead.headers)["relay-event-id"]: dict(dead.headers)["relay-attempts"]
        for dead in bus.records(DEAD)
    }
    assert attempts == {stored.id.encode(): b"3", fresh.id.encode(): b"3"}
    await log.flush()
    entries = [decode_attempt(item.value) for item in bus.records("attempts")]
    assert [(e.attempt, e.outcome) for e in entries if e.event_id == fresh.id] == [
        (1, "retrying"),
        (2, "retrying"),
        (3, "deadlettered"),
    ]


async def test_a_crashed_binary_mode_record_is_dead_lettered_structured(
    bus: MemoryBus, subscriber: Subscriber
) -> None:
    event = chat_event(1, 1)
    value, headers = to_binary(event)
    await bus.publish([Record(topic=EVENTS, value=value, key=b"k", headers=headers)])
    sub = configured(subscriber)

    class Buggy(Sender):
        async def deliver(self, event_id: str, *args: Any, **kwargs: Any) -> Any:
            raise KeyError("a bug")

    with capture_logs():
        await asyncio.wait_for(worker(bus, sub, sender=Buggy(sub)).run(), 30)
    [dead] = bus.records(DEAD)
    assert dead.value == encode(event)
