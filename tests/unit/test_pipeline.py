"""The pipeline on the in-memory bus: one body becomes one bus write (its raw copy, its events
on every routed topic, or a dead letter), and nothing is acknowledged the bus did not keep."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import msgspec
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from structlog.testing import capture_logs

from relay.bus import BusError
from relay.bus.memory import MemoryBus
from relay.cloudevents import decode, from_binary
from relay.config import Match, Route, Topics
from relay.config.model import Limits
from relay.events import CloudEvent
from relay.metrics import EVENTS, PUBLISH_SECONDS
from relay.pipeline import Accepted, DeadLettered, Malformed, Pipeline, _Clock, received_now
from relay.providers import PROVIDERS, Inbound
from relay.routing import Router
from relay.telemetry.otel import Tracing
from tests.factories import live_settings


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


def pipeline(
    bus: MemoryBus,
    routes: list[Route] | None = None,
    *,
    max_events: int = Limits().max_events_per_body,
    dedupe_window: float = 0.0,
    **options: object,
) -> Pipeline:
    live = live_settings(
        router=Router(routes or [], "chat.events"),
        max_events=max_events,
        dedupe_window=dedupe_window,
    )
    return Pipeline(bus, live, Topics(), **options)  # type: ignore[arg-type]


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
    at_the_bound = await pipeline(bus, max_events=6).accept(
        inbound(status(6), "plugchat", "messageStatus")
    )
    assert isinstance(at_the_bound, Accepted)  # exactly max_events is allowed


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
    runs = pipeline(bus, dedupe_window=60.0)
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


# -- from the mutation check (tests/README.md, "Mutation check") --

CHATWOOT = PROVIDERS["chatwoot"]


@pytest.fixture
def normalizer(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Chatwoot's normalizer, made to fail the way the list's first entry says."""
    how: list[object] = []

    def broken(arrived: Inbound) -> list[CloudEvent]:
        events = CHATWOOT.normalize(arrived)
        if how == ["surrogate"]:  # a normalizer that let a lone surrogate through
            return [msgspec.structs.replace(e, subject="conversa \ud800") for e in events]
        raise RuntimeError("a bug in the normalizer")

    monkeypatch.setitem(PROVIDERS, "chatwoot", dataclasses.replace(CHATWOOT, normalize=broken))
    yield how


async def test_a_normalizers_bug_is_a_dead_letter_with_the_body_and_its_error(
    bus: MemoryBus, normalizer: list[object]
) -> None:
    with capture_logs() as logs:
        outcome = await pipeline(bus).accept(inbound(chatwoot()))
    assert outcome == DeadLettered("normalizer_error")
    [raw] = bus.records("relay.raw")
    [dead] = bus.records("relay.deadletter")
    headers = dict(dead.headers)
    assert dead.value == raw.value == chatwoot() and dead.key == b"cw"
    assert headers["relay-reason"] == b"normalizer_error"
    assert headers["relay-error"] == b"RuntimeError: a bug in the normalizer"
    assert headers["relay-source"] == b"cw" and headers["relay-request-id"] == b"r1"
    assert [(e["event"], e["provider"], e["log_level"]) for e in logs] == [
        ("normalizer_failed", "chatwoot", "error")
    ]
    assert bus.records("chat.events") == []


async def test_an_event_utf8_cannot_carry_is_a_dead_letter_not_an_error(
    bus: MemoryBus, normalizer: list[object]
) -> None:
    normalizer.append("surrogate")
    outcome = await pipeline(bus).accept(inbound(chatwoot()))
    assert outcome == DeadLettered("unencodable")
    [dead] = bus.records("relay.deadletter")
    headers = dict(dead.headers)
    assert dead.value == chatwoot() and dead.key == b"cw"
    assert headers["relay-reason"] == b"unencodable"
    assert headers["relay-error"].startswith(b"UnicodeEncodeError: 'utf-8' codec")
    assert headers["relay-provider"] == b"chatwoot"
    assert bus.records("chat.events") == []


async def test_a_malformed_bodys_detail_is_the_answer_and_the_dead_letters_error(
    bus: MemoryBus,
) -> None:
    outcome = await pipeline(bus).accept(inbound(b"{not json"))
    assert isinstance(outcome, Malformed) and outcome.detail not in ("", "None")
    [dead] = bus.records("relay.deadletter")
    assert dict(dead.headers)["relay-error"] == outcome.detail.encode()
    assert dead.key == b"cw"


async def test_every_metadata_header_names_what_it_carries(bus: MemoryBus) -> None:
    arrived = msgspec.structs.replace(
        inbound(chatwoot()),
        kind="message-created",
        delivery_id="d-42",
        content_type="application/json; x=\udcff",  # a header byte that is not UTF-8
    )
    await pipeline(bus).accept(arrived)
    [raw] = bus.records("relay.raw")
    assert raw.headers == (
        ("relay-source", b"cw"),
        ("relay-provider", b"chatwoot"),
        ("relay-request-id", b"r1"),
        ("relay-received-at", b"2026-01-01T00:00:00.000Z"),
        ("relay-kind", b"message-created"),
        ("content-type", b"application/json; x=\xff"),
        ("relay-delivery-id", b"d-42"),
    )


def record_size(bus: MemoryBus) -> int:
    [item] = bus.records("chat.events")
    return len(item.value) + len(item.key or b"") + sum(len(n) + len(v) for n, v in item.headers)


async def test_a_canonical_record_exactly_at_max_record_bytes_passes(bus: MemoryBus) -> None:
    await pipeline(bus).accept(inbound(chatwoot()))
    size = record_size(bus)  # value, key and headers, as Kafka counts them
    at = MemoryBus()
    await at.start()
    assert isinstance(
        await pipeline(at, max_record_bytes=size).accept(inbound(chatwoot())), Accepted
    )
    over = MemoryBus()
    await over.start()
    outcome = await pipeline(over, max_record_bytes=size - 1).accept(inbound(chatwoot()))
    assert outcome == DeadLettered("event_too_large")
    [dead] = over.records("relay.deadletter")
    assert f"a {size}-byte canonical event".encode() in dict(dead.headers)["relay-error"]


async def test_without_dedupe_a_retried_body_is_published_again(bus: MemoryBus) -> None:
    runs = pipeline(bus)
    assert runs.settings.live.max_events == Limits().max_events_per_body  # the default
    await runs.accept(inbound(chatwoot()))
    await runs.accept(inbound(chatwoot()))
    assert len(bus.records("chat.events")) == 2


async def test_a_window_of_one_second_deduplicates_too(bus: MemoryBus) -> None:
    runs = pipeline(bus, dedupe_window=1.0)  # the smallest window a config names in whole seconds
    await runs.accept(inbound(chatwoot()))
    await runs.accept(inbound(chatwoot()))  # within the second: the same event, not published
    assert len(bus.records("chat.events")) == 1


def repeated_status() -> bytes:
    ids = ["3EB0000001", "3EB0000002", "3EB0000001"]  # one message twice in one callback
    return json.dumps({"type": "MessageStatusCallback", "status": "READ", "ids": ids}).encode()


async def test_dedupe_publishes_the_first_copy_and_one_event_per_id_within_a_body(
    bus: MemoryBus,
) -> None:
    runs = pipeline(bus, dedupe_window=60.0)
    first = await runs.accept(inbound(chatwoot()))
    assert isinstance(first, Accepted) and len(bus.records("chat.events")) == 1
    outcome = await runs.accept(inbound(repeated_status(), "plugchat", "messageStatus"))
    assert isinstance(outcome, Accepted) and len(outcome.ids) == 3
    assert outcome.ids[0] == outcome.ids[2] != outcome.ids[1]
    ids = [decode(r.value).id for r in bus.records("chat.events")[1:]]
    assert ids == outcome.ids[:2]


async def test_with_dedupe_off_a_body_listing_one_message_twice_publishes_both(
    bus: MemoryBus,
) -> None:
    runs = pipeline(bus)  # window 0: off, relay holds no ids, not even within one body
    outcome = await runs.accept(inbound(repeated_status(), "plugchat", "messageStatus"))
    assert isinstance(outcome, Accepted)
    assert [decode(r.value).id for r in bus.records("chat.events")] == outcome.ids


async def test_after_a_failed_write_the_next_copy_is_published(bus: MemoryBus) -> None:
    runs = pipeline(bus, dedupe_window=60.0)
    bus.failure = BusError("away")
    with pytest.raises(BusError):
        await runs.accept(inbound(chatwoot()))
    bus.failure = None
    await runs.accept(inbound(chatwoot()))  # the provider's retry: not a duplicate
    assert len(bus.records("chat.events")) == 1


def sample(metric: object, name: str, **labels: str) -> float:
    for family in metric.collect():  # type: ignore[attr-defined]
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return 0.0


async def test_events_are_counted_by_type_and_the_write_is_timed(bus: MemoryBus) -> None:
    created = sample(EVENTS, "relay_events_total", type="chat.message.created")
    count = sample(PUBLISH_SECONDS, "relay_publish_seconds_count")
    total = sample(PUBLISH_SECONDS, "relay_publish_seconds_sum")
    runs = pipeline(bus)
    began = time.perf_counter()
    await runs.accept(inbound(chatwoot(message=1)))
    await runs.accept(inbound(chatwoot(message=2)))
    took = time.perf_counter() - began
    assert sample(EVENTS, "relay_events_total", type="chat.message.created") == created + 2
    assert sample(PUBLISH_SECONDS, "relay_publish_seconds_count") == count + 2
    # the two writes' time is part of the time around them (not a timing bound)
    assert 0 <= sample(PUBLISH_SECONDS, "relay_publish_seconds_sum") - total <= took


def test_received_now_is_rfc3339_utc_with_milliseconds_and_is_now() -> None:
    clock = _Clock()
    for now in (clock.now, clock.now, received_now):
        before = time.time()
        text = now()
        after = time.time()
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", text), text
        stamp = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
        assert int(before * 1000) / 1000 - 0.001 <= stamp <= after


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracing(spans: InMemorySpanExporter) -> Tracing:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    return Tracing(provider)


CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.mark.parametrize("tracestate", ["vendor=abc", None])
async def test_a_traced_body_carries_the_receive_spans_context_to_its_raw_copy_and_events(
    bus: MemoryBus, tracing: Tracing, spans: InMemorySpanExporter, tracestate: str | None
) -> None:
    caller = {"traceparent": CALLER} | ({"tracestate": tracestate} if tracestate else {})
    with tracing.receive(caller, "cw", None, "r1"):
        context = tracing.current()
        outcome = await pipeline(bus, tracing=tracing).accept(inbound(chatwoot()))
    assert isinstance(outcome, Accepted)
    [raw] = bus.records("relay.raw")
    headers = dict(raw.headers)
    assert headers["relay-source"] == b"cw"  # the metadata and the trace context
    assert headers["traceparent"] == context[0].encode()
    assert headers.get("tracestate") == (tracestate.encode() if tracestate else None)
    [record] = bus.records("chat.events")
    event = decode(record.value)
    assert (event.traceparent, event.tracestate) == context
    assert event.id == outcome.ids[0]
    names = sorted(s.name for s in spans.get_finished_spans())
    assert names == ["normalize", "publish", "receive"]
    [publish] = [s for s in spans.get_finished_spans() if s.name == "publish"]
    assert publish.attributes is not None
    assert publish.attributes["messaging.batch.message_count"] == 2


async def test_a_traced_body_outside_any_span_carries_no_trace_context(
    bus: MemoryBus, tracing: Tracing
) -> None:
    await pipeline(bus, tracing=tracing).accept(inbound(chatwoot()))
    [raw] = bus.records("relay.raw")
    assert "traceparent" not in dict(raw.headers)
    [record] = bus.records("chat.events")
    assert (decode(record.value).traceparent, decode(record.value).tracestate) == (None, None)
    assert b"traceparent" not in record.value


def test_the_cache_of_encoded_names_is_bounded() -> None:
    runs = pipeline(MemoryBus())
    for n in range(4097):  # a configuration's names; more means names that keep changing
        assert runs._name(f"source-{n}") == f"source-{n}".encode()
    assert len(runs._names) == 4097
    runs._name("one more")
    assert len(runs._names) == 1  # dropped whole, then refilled
