"""The pipeline on the real embedded log: what one body becomes on the bus, and the outcome
the HTTP handler answers with (DESIGN §3: raw copy always, events on every routed topic,
a dead letter when no event can be made)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from relay.bus.embedded import EmbeddedLog, StoredRecord, read
from relay.config import Match, Route, Topics
from relay.dedupe import Deduplicator
from relay.events import decode, from_binary
from relay.pipeline import Accepted, DeadLettered, Malformed, Pipeline
from relay.providers import Inbound
from relay.routing import Router
from tests.support import fixture_bytes

TOPICS = Topics(events="events", raw="raw", deadletter="dead")
MESSAGE = fixture_bytes("chatwoot/message_created.json")


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[EmbeddedLog]:
    bus = EmbeddedLog(tmp_path)
    await bus.start()
    yield bus
    await bus.close()


def pipeline(bus: EmbeddedLog, routes: list[Route] | None = None, **options: Any) -> Pipeline:
    return Pipeline(bus, Router(routes or [], TOPICS.events), TOPICS, **options)


def inbound(body: bytes, **fields: str) -> Inbound:
    return Inbound(
        source="nexloo",
        provider="chatwoot",
        body=body,
        received_at="2030-01-01T00:00:00.000Z",
        request_id=fields.get("request_id", "req-1"),
        content_type=fields.get("content_type", "application/json"),
    )


def stored(bus: EmbeddedLog, topic: str | None = None) -> list[StoredRecord]:
    return read(bus.path, topic)


async def test_a_body_becomes_its_raw_copy_and_its_event_in_one_write(log: EmbeddedLog) -> None:
    outcome = await pipeline(log).accept(inbound(MESSAGE))
    assert isinstance(outcome, Accepted) and len(outcome.ids) == 1
    raw, event_record = stored(log)
    assert (raw.topic, raw.value, raw.key) == ("raw", MESSAGE, b"nexloo")
    assert dict(raw.headers) == {
        "relay-source": b"nexloo",
        "relay-provider": b"chatwoot",
        "relay-request-id": b"req-1",
        "relay-received-at": b"2030-01-01T00:00:00.000Z",
        "content-type": b"application/json",
    }
    event = decode(event_record.value)
    assert event_record.topic == "events" and event.id == outcome.ids[0]
    assert event_record.key == event.partitionkey.encode()
    assert dict(event_record.headers) == {
        "content-type": b"application/cloudevents+json; charset=utf-8",
        "ce_id": event.id.encode(),
    }


async def test_binary_mode_carries_the_same_event_in_headers_and_data(
    log: EmbeddedLog, tmp_path: Path
) -> None:
    await pipeline(log).accept(inbound(MESSAGE))
    await pipeline(log, binary=True).accept(inbound(MESSAGE))
    structured, binary = stored(log, "events")
    headers = dict(binary.headers)
    assert headers["content-type"] == b"application/json" and "ce_specversion" in headers
    assert from_binary(binary.value, headers) == decode(structured.value)
    assert binary.key == structured.key


async def test_every_matching_route_gets_the_event_and_the_default_topic_none(
    log: EmbeddedLog,
) -> None:
    routes = [
        Route(name="messages", match=Match(type="chat.message.*"), topic="messages"),
        Route(name="source", match=Match(source="nexloo"), topic="nexloo"),
        Route(name="contacts", match=Match(type="chat.contact.*"), topic="contacts"),
    ]
    await pipeline(log, routes).accept(inbound(MESSAGE))
    assert [r.topic for r in stored(log)] == ["raw", "messages", "nexloo"]


async def test_a_body_that_is_not_json_is_malformed_and_kept(log: EmbeddedLog) -> None:
    outcome = await pipeline(log).accept(inbound(b"{not json"))
    assert isinstance(outcome, Malformed)
    raw, dead = stored(log)
    assert (raw.topic, raw.value) == ("raw", b"{not json")
    assert (dead.topic, dead.value, dead.key) == ("dead", b"{not json", b"nexloo")
    assert dict(dead.headers)["relay-reason"] == b"malformed_json"
    assert dict(dead.headers)["relay-request-id"] == b"req-1"


async def test_json_that_makes_no_event_is_dead_lettered_with_its_reason(
    log: EmbeddedLog,
) -> None:
    body = json.dumps({"event": "no_such_event", "id": 1}).encode()
    outcome = await pipeline(log).accept(inbound(body))
    assert isinstance(outcome, DeadLettered)
    raw, dead = stored(log)
    assert raw.topic == "raw" and dead.topic == "dead" and dead.value == body
    assert dict(dead.headers)["relay-reason"] == outcome.reason.encode()
    assert dict(dead.headers)["relay-error"]  # says why, for the operator


async def test_more_events_than_allowed_is_a_dead_letter_not_a_partial_write(
    log: EmbeddedLog,
) -> None:
    outcome = await pipeline(log, max_events=0).accept(inbound(MESSAGE))
    assert outcome == DeadLettered("too_many_events")
    assert [r.topic for r in stored(log)] == ["raw", "dead"]
    assert isinstance(await pipeline(log, max_events=1).accept(inbound(MESSAGE)), Accepted)


async def test_a_canonical_record_over_the_brokers_limit_is_a_dead_letter(
    log: EmbeddedLog,
) -> None:
    outcome = await pipeline(log, max_record_bytes=100).accept(inbound(MESSAGE))
    assert outcome == DeadLettered("event_too_large")
    [dead] = stored(log, "dead")
    assert b"max_record_bytes (100)" in dict(dead.headers)["relay-error"]
    fits = await pipeline(log, max_record_bytes=1_000_000).accept(inbound(MESSAGE))
    assert isinstance(fits, Accepted)


async def test_a_retried_delivery_is_kept_raw_but_its_event_published_once(
    log: EmbeddedLog,
) -> None:
    deduplicating = pipeline(log, dedupe=Deduplicator(window=600))
    first = await deduplicating.accept(inbound(MESSAGE, request_id="req-1"))
    again = await deduplicating.accept(inbound(MESSAGE, request_id="req-2"))
    assert first == again  # the sender gets the same answer, ids included
    assert [r.topic for r in stored(log)] == ["raw", "events", "raw"]
