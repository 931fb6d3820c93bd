"""The pipeline on the in-memory bus: one body becomes one bus write (its raw copy, its events
on every routed topic, or a dead letter), and nothing is acknowledged the bus did not keep."""

from __future__ import annotations

import json

import pytest

from relay.bus import BusError
from relay.bus.memory import MemoryBus
from relay.cloudevents import decode, from_binary
from relay.config import Match, Route, Topics
from relay.dedupe import Deduplicator
from relay.pipeline import Accepted, DeadLettered, Malformed, Pipeline
from relay.providers import Inbound
from relay.routing import Router


def chatwoot(message: int = 7, conversation: int = 9) -> bytes:
    return json.dumps(
        {
            "event": "message_created",
            "id": message,
            "content": "oi",
            "message_type": "incoming",
            "account": {"id": 1},
            "conversation": {"id": conversation},
        }
    ).encode()


def status(count: int) -> bytes:
    ids = [f"3EB0{n:06d}" for n in range(count)]
    return json.dumps({"type": "MessageStatusCallback", "status": "READ", "ids": ids}).encode()


def inbound(body: bytes, provider: str = "chatwoot", kind: str | None = None) -> Inbound:
    return Inbound(
        source="cw" if provider == "chatwoot" else "plug",
        provider=provider,
        body=body,
        received_at="2026-01-01T00:00:00.000Z",
        kind=kind,
        request_id="r1",
        content_type="application/json",
    )


@pytest.fixture
async def bus() -> MemoryBus:
    bus = MemoryBus()
    await bus.start()
    return bus


def pipeline(bus: MemoryBus, routes: list[Route] | None = None, **options: object) -> Pipeline:
    return Pipeline(bus, Router(routes or [], "chat.events"), Topics(), **options)  # type: ignore[arg-type]


async def test_a_body_is_one_write_of_its_raw_copy_and_its_events_on_every_routed_topic(
    bus: MemoryBus,
) -> None:
    routes = [
        Route(name="cw", match=Match(source="cw"), topic="cw.events"),
        Route(name="all", topic="chat.events"),
    ]
    outcome = await pipeline(bus, routes).accept(inbound(chatwoot()))
    assert isinstance(outcome, Accepted) and len(outcome.ids) == 1
    assert bus.publishes == 1
    [raw] = bus.records("relay.raw")
    assert raw.value == chatwoot() and raw.key == b"cw"
    headers = dict(raw.headers)
    assert headers["relay-source"] == b"cw" and headers["relay-provider"] == b"chatwoot"
    assert headers["relay-request-id"] == b"r1" and headers["content-type"] == b"application/json"
    copies = [*bus.records("chat.events"), *bus.records("cw.events")]
    assert len(copies) == 2 and copies[0].value == copies[1].value
    event = decode(copies[0].value)
    assert event.id == outcome.ids[0] and copies[0].key == event.partitionkey.encode()
    assert dict(copies[0].headers)["ce_id"] == event.id.encode()
    assert bus.records("relay.deadletter") == []


async def test_binary_mode_puts_the_data_in_the_value_and_the_envelope_in_headers(
    bus: MemoryBus,
) -> None:
    outcome = await pipeline(bus, binary=True).accept(inbound(chatwoot()))
    [record] = bus.records("chat.events")
    headers = dict(record.headers)
    event = from_binary(record.value, headers)
    assert isinstance(outcome, Accepted) and event.id == outcome.ids[0]
    assert headers["content-type"] == b"application/json"
    assert json.loads(record.value)["message"]["text"] == "oi"


async def test_a_body_that_is_not_json_is_kept_and_dead_lettered_and_answered_400(
    bus: MemoryBus,
) -> None:
    outcome = await pipeline(bus).accept(inbound(b"{not json"))
    assert isinstance(outcome, Malformed)
    [raw] = bus.records("relay.raw")
    [dead] = bus.records("relay.deadletter")
    assert raw.value == dead.value == b"{not json" and bus.publishes == 1
    assert dict(dead.headers)["relay-reason"] == b"malformed_json"
    assert dict(dead.headers)["relay-source"] == b"cw"  # the raw copy's metadata, too


async def test_too_many_events_from_one_body_is_a_dead_letter_not_an_expansion(
    bus: MemoryBus,
) -> None:
    outcome = await pipeline(bus, max_events=5).accept(
        inbound(status(6), "plugchat", "messageStatus")
    )
    assert outcome == DeadLettered("too_many_events")
    [dead] = bus.records("relay.deadletter")
    assert dead.value == status(6) and bus.records("chat.events") == []
    assert b"6 events" in dict(dead.headers)["relay-error"]


async def test_a_canonical_event_too_large_for_the_bus_is_dead_lettered(bus: MemoryBus) -> None:
    # a long transcript: each short raw entry becomes a larger canonical message
    chat = {
        f"3EB0{n:06d}": {
            "messageId": f"3EB0{n:06d}",
            "phone": "5544999990001",
            "momment": 1784045112448 + n,
            "text": {"message": "ok"},
        }
        for n in range(200)
    }
    body = json.dumps(
        {
            "attendance": {"attendanceNumber": 77, "customer": {"phone": "5544999990001"}},
            "chat": chat,
        },
        separators=(",", ":"),
    ).encode()
    outcome = await pipeline(bus, max_record_bytes=len(body) + 1024).accept(
        inbound(body, "plugchat", "finishAttendance")
    )
    assert outcome == DeadLettered("event_too_large")
    [raw] = bus.records("relay.raw")
    [dead] = bus.records("relay.deadletter")
    assert raw.value == dead.value == body
    assert b"kafka.max_record_bytes" in dict(dead.headers)["relay-error"]
    assert bus.records("chat.events") == []


async def test_a_duplicate_event_is_published_once_and_its_raw_copy_every_time(
    bus: MemoryBus,
) -> None:
    dedupe = Deduplicator(window=60.0)
    runs = pipeline(bus, dedupe=dedupe)
    first = await runs.accept(inbound(chatwoot()))
    second = await runs.accept(inbound(chatwoot()))
    assert first == second  # the same ids: the sender learns nothing changed
    assert len(bus.records("relay.raw")) == 2
    assert len(bus.records("chat.events")) == 1


async def test_nothing_is_acknowledged_when_the_bus_keeps_nothing(bus: MemoryBus) -> None:
    bus.failure = BusError("away")
    with pytest.raises(BusError):
        await pipeline(bus).accept(inbound(chatwoot()))
    assert bus.records() == []
