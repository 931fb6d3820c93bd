"""One subscriber's delivery loop on the in-memory bus, to a real local HTTP subscriber:
order per key, dead letters, filters and formats, poison records, a bug mid-delivery."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

import relay.delivery.worker as worker_module
from relay.attempts import AttemptLog, decode_attempt
from relay.bus import Item, Record, Stream
from relay.bus.memory import STREAM, MemoryBus, MemorySubscription
from relay.cloudevents import encode, to_binary
from relay.config import Subscriber as SubscriberConfig
from relay.deadletters import DeadLetters
from relay.delivery.sender import Sender
from relay.delivery.state import DeliveryState
from relay.delivery.tally import Stats
from relay.delivery.worker import SubscriberWorker
from tests.factories import chat_event, records
from tests.subscriber import Subscriber
from tests.support import make_config, poll_until, unique

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
    unsaid, other = named(subscriber), named(subscriber)
    SubscriberWorker(
        unsaid, bus.subscribe("relay.sub.y", [EVENTS]), Sender(unsaid), DeadLetters(bus, DEAD)
    )
    assert sample("relay_consumer_lag", subscriber=unsaid.name) is None  # not live by default
    SubscriberWorker(
        other,
        bus.subscribe("relay.sub.z", [EVENTS]),
        Sender(other),
        DeadLetters(bus, DEAD),
        live=True,
    )
    for name in (live.name, other.name):  # each live worker's own series
        assert sample("relay_consumer_lag", subscriber=name) == 0
        assert sample("relay_circuit_state", subscriber=name) == 0


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
    with capture_logs() as logs:
        await asyncio.wait_for(running.run(), 30)
    failed = [line for line in logs if line["event"] == "delivery_attempt_failed"]
    assert failed and {line["max_attempts"] for line in failed} == {3}
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
    assert not any(e.replay for e in entries)  # not a replay unless said


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


class Watched(MemorySubscription):
    """The in-memory subscription, with what the worker commits and fetches written down, and
    a commit that fails (``refuse``) or never returns (``hang``) the first time, or a backlog
    that fails once (the broker's errors, which the in-memory bus never has)."""

    def __init__(self, bus: MemoryBus, *, refuse: bool = False, hang: bool = False) -> None:
        super().__init__(bus, "relay.sub.watched", [EVENTS], "earliest")
        self.commits: list[dict[Stream, int]] = []
        self.fetched: list[int] = []
        self.refuse, self.hang = refuse, hang
        self.backlog_fails = 0

    async def fetch(self, max_records: int, wait: float) -> list[Item] | None:
        self.fetched.append(max_records)
        return await super().fetch(max_records, wait)

    async def commit(self, positions: dict[Stream, int]) -> None:
        if self.hang:
            self.hang = False
            await asyncio.Event().wait()
        if self.refuse:
            raise OSError("refused")
        self.commits.append(dict(positions))
        await super().commit(positions)

    async def backlog(self) -> int:
        if self.backlog_fails:
            self.backlog_fails -= 1
            raise OSError("no answer")
        return await super().backlog()


class Gated:
    """A subscriber script holding each event until the test lets it through."""

    def __init__(self) -> None:
        self.gates: dict[str, asyncio.Event] = {}

    def gate(self, event_id: str) -> asyncio.Event:
        return self.gates.setdefault(event_id, asyncio.Event())

    async def __call__(self, sub: Subscriber, body: bytes, headers: dict[str, str]) -> int:
        await self.gate(headers["webhook-id"]).wait()
        return 200

    def open_all(self) -> None:
        for gate in self.gates.values():
            gate.set()


@pytest.fixture
def gated(subscriber: Subscriber) -> Iterator[Gated]:
    script = Gated()
    subscriber.script = script
    yield script
    script.open_all()  # a held request must not outlive the test


def in_flight(subscriber: Subscriber, n: int) -> Callable[[], bool]:
    return lambda: subscriber.in_flight == n


async def test_the_read_loop_keeps_the_buffer_full_and_no_fuller_and_stops_while_full(
    bus: MemoryBus, subscriber: Subscriber, gated: Gated, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "FETCH_WAIT_SECONDS", 0.05)
    monkeypatch.setattr(worker_module, "COMMIT_INTERVAL_SECONDS", 0.05)
    events = [chat_event(1, n) for n in range(6)]  # one key: one at a time
    await bus.publish(records(EVENTS, events))
    sub = configured(subscriber)
    watched = Watched(bus)
    live = SubscriberWorker(sub, watched, Sender(sub), DeadLetters(bus, DEAD), buffer_limit=2)
    running = asyncio.create_task(live.run())
    await poll_until(in_flight(subscriber, 1))
    await asyncio.sleep(0.3)  # several waits for room, all of them with the buffer full
    assert (live.buffered, running.done()) == (2, False)
    await poll_until(lambda: live.lag == 6, what="lag: 4 not fetched, 2 buffered")
    for done in range(2):
        gated.gate(events[done].id).set()
        await poll_until(lambda n=done + 1: len(subscriber.received) == n)  # type: ignore[misc]
        await poll_until(lambda: live.buffered == 2, what="the buffer refilled")  # room of 1
    assert max(watched.fetched) <= 2 and live.buffered == 2
    live.stop_reading(0.1)  # while the buffer is full and its head held
    stats = await asyncio.wait_for(running, 5)
    assert stats.delivered == 2
    assert watched.commits[-1] == {STREAM: 3}


async def test_records_after_a_full_buffer_are_read_once_there_is_room(
    bus: MemoryBus, subscriber: Subscriber, gated: Gated, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "FETCH_WAIT_SECONDS", 0.05)
    events = [chat_event(1, n) for n in range(5)]
    await bus.publish(records(EVENTS, events))
    sub = configured(subscriber)
    live = SubscriberWorker(sub, Watched(bus), Sender(sub), DeadLetters(bus, DEAD), buffer_limit=2)
    running = asyncio.create_task(live.run())
    await poll_until(in_flight(subscriber, 1))
    gated.open_all()
    for event in events:
        gated.gate(event.id).set()
    await subscriber.wait_for(lambda s: len(s.delivered()) == 5, within=10)
    live.stop_reading(1.0)
    stats = await asyncio.wait_for(running, 5)
    assert stats.delivered == 5
    assert [r.headers["webhook-id"] for r in subscriber.delivered()] == [e.id for e in events]


def test_the_buffer_holds_16_records_a_slot_and_at_least_256(subscriber: Subscriber) -> None:
    bus = MemoryBus()
    for slots, limit in ((1, 256), (16, 256), (20, 320), (32, 512)):
        sub = configured(subscriber, f", max_in_flight: {slots}")
        built = SubscriberWorker(
            sub, bus.subscribe("c", [EVENTS]), Sender(sub), DeadLetters(bus, DEAD)
        )
        assert built.buffer_limit == limit


async def test_a_key_goes_by_the_record_key_and_else_the_partition_key(
    bus: MemoryBus, subscriber: Subscriber
) -> None:
    subscriber.delay = 0.05
    events = [chat_event(n, n) for n in range(4)]  # four partition keys
    await bus.publish([Record(topic=EVENTS, value=encode(e), key=b"one") for e in events])
    await run_to_end(bus, configured(subscriber, ", max_in_flight: 4"))
    assert subscriber.max_in_flight == 1  # one record key: one at a time
    assert [r.headers["webhook-id"] for r in subscriber.received] == [e.id for e in events]
    unkeyed = Subscriber(delay=0.05)
    await unkeyed.start()
    try:
        fresh = MemoryBus()
        await fresh.start()
        await fresh.publish([Record(topic=EVENTS, value=encode(e), key=None) for e in events])
        live = worker(fresh, configured(unkeyed, ", max_in_flight: 4"), bounded=False)
        running = asyncio.create_task(live.run())
        await unkeyed.wait_for(lambda s: len(s.delivered()) == 4)
        await poll_until(lambda: not live._tasks, what="finished keys' tasks let go")
        live.stop_reading(1.0)
        await asyncio.wait_for(running, 5)
    finally:
        await unkeyed.close()
    assert unkeyed.max_in_flight > 1  # no record key: by partition key, in parallel


async def test_a_revoked_stream_waits_for_its_deliveries_commits_and_is_forgotten(
    bus: MemoryBus, subscriber: Subscriber, gated: Gated, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Calls the hook a rebalance calls (Kafka's, in integration/test_delivery.py)."""
    monkeypatch.setattr(worker_module, "COMMIT_INTERVAL_SECONDS", 3600.0)
    monkeypatch.setattr(worker_module, "REVOKE_WAIT_SECONDS", 5.0)
    first, held, late = chat_event(1, 1), chat_event(2, 2), chat_event(3, 3)
    gated.gate(first.id).set()
    await bus.publish(records(EVENTS, [first, held]))
    sub = configured(subscriber)
    watched = Watched(bus)
    live = SubscriberWorker(sub, watched, Sender(sub), DeadLetters(bus, DEAD))
    running = asyncio.create_task(live.run())
    await poll_until(lambda: len(subscriber.received) == 1 and subscriber.in_flight == 1)
    assert watched.on_revoked is not None
    revoking = asyncio.ensure_future(watched.on_revoked({STREAM}))
    await asyncio.sleep(0.1)
    assert not revoking.done()  # waiting for the delivery in flight
    gated.gate(held.id).set()
    await asyncio.wait_for(revoking, 5)
    assert watched.commits == [{STREAM: 3}]  # both finished: committed past both
    assert live.buffered == 0
    # a delivery that does not finish in time: the revoke gives up on it, commits nothing
    monkeypatch.setattr(worker_module, "REVOKE_WAIT_SECONDS", 0.1)
    await bus.publish(records(EVENTS, [late]))
    await poll_until(in_flight(subscriber, 1))
    await asyncio.wait_for(watched.on_revoked({STREAM}), 5)
    assert (watched.commits, live.buffered) == ([{STREAM: 3}], 0)
    gated.gate(late.id).set()  # delivered, but its finish no longer counts
    await subscriber.wait_for(lambda s: len(s.delivered()) == 3)
    live.stop_reading(1.0)
    stats = await asyncio.wait_for(running, 5)
    assert stats.delivered == 3
    assert watched.commits == [{STREAM: 3}]  # the forgotten stream is not committed again


async def test_a_commit_that_fails_is_logged_and_the_next_one_carries_the_position(
    bus: MemoryBus, subscriber: Subscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "COMMIT_INTERVAL_SECONDS", 0.05)
    first, second = chat_event(1, 1), chat_event(2, 2)
    await bus.publish(records(EVENTS, [first]))
    sub = named(subscriber)
    watched = Watched(bus, refuse=True)
    live = SubscriberWorker(sub, watched, Sender(sub), DeadLetters(bus, DEAD))
    with capture_logs() as logs:
        running = asyncio.create_task(live.run())
        await subscriber.wait_for(lambda s: len(s.delivered()) == 1)
        await poll_until(lambda: any(line["event"] == "commit_failed" for line in logs))
        assert watched.on_revoked is not None
        await watched.on_revoked({STREAM})  # its commit is refused too; the stream forgotten
        watched.refuse = False
        await bus.publish(records(EVENTS, [second]))
        await subscriber.wait_for(lambda s: len(s.delivered()) == 2)
        live.stop_reading(1.0)
        await asyncio.wait_for(running, 5)
    failed = [line for line in logs if line["event"] == "commit_failed"]
    line = {"event": "commit_failed", "log_level": "warning", "subscriber": sub.name}
    # the periodic one (once: nothing new after it), then the revoke's
    assert failed == [line | {"error": "refused"}] * 2
    assert watched.commits and all(commit == {STREAM: 3} for commit in watched.commits)


async def test_periodic_commits_count_and_measure_and_a_cut_short_one_is_made_at_the_end(
    bus: MemoryBus, subscriber: Subscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(worker_module, "COMMIT_INTERVAL_SECONDS", 0.05)
    await bus.publish(records(EVENTS, [chat_event(1, 1)]))
    sub = named(subscriber)
    watched = Watched(bus)
    watched.backlog_fails = 1
    live = SubscriberWorker(sub, watched, Sender(sub), DeadLetters(bus, DEAD))
    running = asyncio.create_task(live.run())

    def delivered() -> float | None:
        return sample("relay_deliveries_total", subscriber=sub.name, outcome="delivered")

    await poll_until(lambda: watched.commits == [{STREAM: 2}], what="committed while running")
    await poll_until(lambda: delivered() == 1, what="counted while running")
    await asyncio.sleep(0.3)  # several more rounds with nothing new
    assert watched.commits == [{STREAM: 2}]  # nothing committed again
    await bus.publish(records(EVENTS, [chat_event(2, 2), chat_event(3, 3)]))
    await poll_until(lambda: watched.commits[-1:] == [{STREAM: 4}])
    await poll_until(lambda: delivered() == 3)
    watched.hang = True  # the next commit never returns: stop cancels it
    await bus.publish(records(EVENTS, [chat_event(4, 4)]))
    await subscriber.wait_for(lambda s: len(s.delivered()) == 4)
    await poll_until(lambda: not watched.hang, what="a commit hanging")
    live.stop_reading(1.0)
    await asyncio.wait_for(running, 5)
    # a periodic commit may land between events 2 and 3 on a loaded machine ({STREAM: 3})
    positions = [commit[STREAM] for commit in watched.commits]
    assert positions[0] == 2 and positions[-1] == 5 and 4 in positions
    assert positions == sorted(set(positions)), positions  # each position committed once
    assert set(positions) <= {2, 3, 4, 5}
    assert delivered() == 4


async def test_a_gone_subscriber_stops_the_worker_at_once_with_nothing_finished(
    bus: MemoryBus, subscriber: Subscriber, gated: Gated
) -> None:
    gone, held = chat_event(1, 1), chat_event(2, 2)
    await bus.publish(records(EVENTS, [held, gone]))
    sub = named(subscriber)

    async def script(s: Subscriber, body: bytes, headers: dict[str, str]) -> int:
        return 410 if headers["webhook-id"] == gone.id else await gated(s, body, headers)

    subscriber.script = script
    live = worker(bus, sub, bounded=False)
    with capture_logs() as logs:
        stats = await asyncio.wait_for(live.run(), 10)  # the held delivery is cancelled
    assert (stats.delivered, stats.deadlettered, stats.skipped) == (0, 0, 0)
    assert live.gone is not None and (live.gone.status, live.gone.reason) == (410, "gone")
    assert [line for line in logs if line["event"] == "subscriber_gone"] == [
        {
            "event": "subscriber_gone",
            "log_level": "warning",
            "subscriber": sub.name,
            "event_id": gone.id,
            "status": 410,
            "error": "HTTP 410: nope",
        }
    ]
    assert bus.positions["relay.sub.sub"] == 0  # nothing committed: both read again
    assert bus.records(DEAD) == []


async def test_the_event_trace_context_goes_to_the_sender(
    bus: MemoryBus, subscriber: Subscriber
) -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    event = msgspec.structs.replace(chat_event(1, 1), traceparent=parent, tracestate="k=v")
    await bus.publish(records(EVENTS, [event]))
    sub = configured(subscriber)
    seen: list[tuple[object, object]] = []

    class Watching(Sender):
        async def deliver(self, event_id: str, *args: Any, **kwargs: Any) -> Any:
            seen.append((kwargs.get("traceparent"), kwargs.get("tracestate")))
            return await super().deliver(event_id, *args, **kwargs)

    await asyncio.wait_for(worker(bus, sub, sender=Watching(sub)).run(), 30)
    assert seen == [(parent, "k=v")]


async def test_a_delivered_event_settles_its_stored_attempts(
    tmp_path: Path, bus: MemoryBus, subscriber: Subscriber
) -> None:
    event = chat_event(1, 1)
    await bus.publish(records(EVENTS, [event]))
    sub = configured(subscriber)
    state = DeliveryState(tmp_path)
    state.record_attempts(sub.name, event.id, 1)
    running = SubscriberWorker(
        sub,
        bus.subscribe("relay.sub.sub", [EVENTS], "earliest", bounded=True),
        Sender(sub),
        DeadLetters(bus, DEAD),
        state=state,
    )
    stats = await asyncio.wait_for(running.run(), 30)
    assert stats.delivered == 1
    assert state.attempts(sub.name) == {}


class Ticking:
    """A monotonic clock that moves one second each time it is read."""

    def __init__(self) -> None:
        self.now = 99.0

    def monotonic(self) -> float:
        self.now += 1.0
        return self.now


async def test_each_attempt_is_timed_from_its_own_start(
    bus: MemoryBus, subscriber: Subscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's and the tally's clock tick a second a reading: attempt 1 ends at 101
    (began 100), waits Retry-After 0; attempt 2 ends at 102, waits 10 ms; 3 ends at 103."""
    answers = [(503, {"Retry-After": "0"}), (500, {}), (200, {})]
    subscriber.script = lambda s, body, headers: answers.pop(0)
    event = chat_event(1, 1)
    await bus.publish(records(EVENTS, [event]))
    sub = configured(
        subscriber, ", retry: {max_attempts: 3, initial: 10ms, max: 10ms, jitter: false}"
    )
    log = AttemptLog(bus, "attempts")
    running = SubscriberWorker(
        sub,
        bus.subscribe("relay.sub.sub", [EVENTS], "earliest", bounded=True),
        Sender(sub),
        DeadLetters(bus, DEAD),
        attempts=log,
    )
    clock = Ticking()
    monkeypatch.setattr("relay.delivery.worker.time", clock)
    monkeypatch.setattr("relay.delivery.tally.time", clock)
    stats = await asyncio.wait_for(running.run(), 30)
    monkeypatch.undo()
    assert stats.delivered == 1
    await log.flush()
    entries = [decode_attempt(item.value) for item in bus.records("attempts")]
    assert [(e.attempt, e.outcome, e.duration_ms) for e in entries] == [
        (1, "retrying", 1000.0),
        (2, "retrying", 1000.0),
        (3, "delivered", 990.0),
    ]
