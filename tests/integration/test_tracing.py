"""One trace from the webhook to the subscriber's request, across the real broker (Tansu), the
embedded log and a real local subscriber; spans read from the SDK's in-memory exporter, and
the real OTLP/HTTP exporter posting to a real local collector stand-in."""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from relay import telemetry
from relay.app import build_app
from relay.bus import Since
from relay.config import Config, load
from relay.delivery.replay import replay
from relay.telemetry.otel import Tracing
from tests.broker import Broker
from tests.subscriber import Subscriber
from tests.support import consume, fixture_bytes, make_config, poll_until, unique

pytestmark = pytest.mark.integration

TOKEN = "tok-tracing-0123456789"
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
CALLER = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
BODY = fixture_bytes("chatwoot/message_created.json")
FAST_RETRY = "{max_attempts: 3, initial: 50ms, max: 100ms, jitter: false}"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracing(exporter: InMemorySpanExporter) -> Tracing:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider)


@pytest.fixture
async def subscriber() -> AsyncIterator[Subscriber]:
    sub = await Subscriber().start()
    yield sub
    await sub.close()


def config_for(
    tmp_path: Path,
    subscriber: Subscriber,
    *,
    broker: Broker | None = None,
    mode: str = "structured",
    retry: str = FAST_RETRY,
    extra: str = "",
    kafka: str = "",
) -> tuple[Config, dict[str, str]]:
    topics = {"events": unique("tr.events"), "raw": unique("tr.raw"), "dead": unique("tr.dead")}
    bus = (
        f'kafka: {{bootstrap_servers: "{broker.bootstrap}", idempotence: false, '
        f"cloudevents_mode: {mode}, session_timeout_ms: 1000, heartbeat_interval_ms: 300"
        f"{', ' + kafka if kafka else ''}}}"
        if broker is not None
        else ""
    )
    config = make_config(
        f"""
data_dir: {tmp_path}
{bus}
topics: {{events: {topics["events"]}, raw: {topics["raw"]}, deadletter: {topics["dead"]}}}
sources:
  nexloo: {{provider: chatwoot, tokens: ["{TOKEN}"]}}
subscribers:
  - {{name: crm, url: "{subscriber.url}", start_from: earliest, retry: {retry}}}
{extra}
"""
    )
    return config, topics


@asynccontextmanager
async def running(config: Config, tracing: Tracing | None) -> AsyncIterator[TestClient[Any, Any]]:
    client: TestClient[Any, Any] = TestClient(TestServer(build_app(config, tracing=tracing)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def post_hook(client: TestClient[Any, Any], headers: dict[str, str] | None = None) -> str:
    response = await client.post(
        "/v1/hooks/nexloo",
        data=BODY,
        headers={"Content-Type": "application/json", "X-Relay-Token": TOKEN, **(headers or {})},
    )
    assert response.status == 202, await response.text()
    [event_id] = (await response.json())["ids"]
    return str(event_id)


def hexes(span: ReadableSpan) -> tuple[str, str]:
    context = span.get_span_context()
    assert context is not None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def parent_of(span: ReadableSpan) -> str | None:
    return None if span.parent is None else format(span.parent.span_id, "016x")


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


async def spans_named(
    exporter: InMemorySpanExporter, name: str, count: int = 1
) -> list[ReadableSpan]:
    await poll_until(lambda: len(named(exporter, name)) >= count, within=10, what=name)
    return named(exporter, name)


def trace_of(header: str) -> tuple[str, str]:
    """(trace id, parent span id) of a traceparent header."""
    version, trace_id, span_id, flags = header.split("-")
    assert version == "00" and len(flags) == 2
    return trace_id, span_id


async def test_one_trace_from_the_webhook_to_the_subscriber_over_kafka(
    broker: Broker,
    subscriber: Subscriber,
    tmp_path: Path,
    tracing: Tracing,
    exporter: InMemorySpanExporter,
) -> None:
    config, topics = config_for(tmp_path, subscriber, broker=broker)
    async with running(config, tracing) as client:
        event_id = await post_hook(client, {"traceparent": CALLER, "tracestate": "vendor=abc"})
        await subscriber.wait_for(lambda s: len(s.delivered()) == 1)
        [deliver] = await spans_named(exporter, "deliver")
        records = await consume(broker.bootstrap, topics["events"], 1)
        [raw] = await consume(broker.bootstrap, topics["raw"], 1)

    [receive] = named(exporter, "receive")
    [normalize] = named(exporter, "normalize")
    [publish] = named(exporter, "publish")
    receive_trace, receive_span = hexes(receive)

    # the caller's trace is continued: the receive span is its child, in its trace
    assert receive_trace == CALLER_TRACE
    assert parent_of(receive) == CALLER_SPAN
    assert receive.parent is not None and receive.parent.is_remote
    assert receive.attributes is not None
    assert receive.attributes["relay.source"] == "nexloo"
    assert receive.attributes["relay.outcome"] == "accepted"
    assert receive.attributes["http.response.status_code"] == 202
    for child in (normalize, publish, deliver):
        assert hexes(child)[0] == CALLER_TRACE
        assert parent_of(child) == receive_span
    assert normalize.attributes is not None and publish.attributes is not None
    assert normalize.attributes["relay.event_ids"] == (event_id,)
    assert set(publish.attributes["relay.topics"]) == {topics["events"], topics["raw"]}
    # where the bus put each record, as the broker has it
    [record] = records
    placed = {f"{topics['events']}/{record.partition}", f"{topics['raw']}/{raw.partition}"}
    assert set(publish.attributes["relay.partitions"]) == placed
    assert float(publish.attributes["relay.batch_wait_ms"]) >= 0  # type: ignore[arg-type]
    assert deliver.attributes is not None
    assert deliver.attributes["cloudevents.event_id"] == event_id
    assert deliver.attributes["relay.subscriber"] == "crm"
    assert deliver.attributes["relay.attempt"] == 1
    assert deliver.attributes["http.response.status_code"] == 200

    # the event carries the receive span's context (the distributed-tracing extension) ...
    event = json.loads(record.value)
    assert trace_of(event["traceparent"]) == (CALLER_TRACE, receive_span)
    assert event["tracestate"] == "vendor=abc"
    assert dict(raw.headers)["traceparent"].decode() == event["traceparent"]
    assert dict(record.headers)["traceparent"].decode() == event["traceparent"]
    assert dict(record.headers)["tracestate"] == b"vendor=abc"
    # ... and the subscriber's request carries the attempt's, in the same trace
    [got] = subscriber.delivered()
    assert trace_of(got.headers["traceparent"]) == (CALLER_TRACE, hexes(deliver)[1])
    assert got.headers["tracestate"] == "vendor=abc"
    assert json.loads(got.body)["traceparent"] == event["traceparent"]


async def test_without_a_traceparent_relay_starts_the_trace(
    broker: Broker,
    subscriber: Subscriber,
    tmp_path: Path,
    tracing: Tracing,
    exporter: InMemorySpanExporter,
) -> None:
    config, _ = config_for(tmp_path, subscriber, broker=broker)
    async with running(config, tracing) as client:
        await post_hook(client, {"traceparent": "00-not-a-trace-context-01"})
        await subscriber.wait_for(lambda s: len(s.delivered()) == 1)
        [deliver] = await spans_named(exporter, "deliver")
    [receive] = named(exporter, "receive")
    assert receive.parent is None  # a new root, not an error
    trace_id, _ = hexes(receive)
    assert trace_id != CALLER_TRACE
    assert hexes(deliver)[0] == trace_id
    [got] = subscriber.delivered()
    assert trace_of(got.headers["traceparent"]) == (trace_id, hexes(deliver)[1])


async def test_each_attempt_is_a_span_with_its_status_and_retry_wait(
    broker: Broker,
    subscriber: Subscriber,
    tmp_path: Path,
    tracing: Tracing,
    exporter: InMemorySpanExporter,
) -> None:
    subscriber.script = lambda s, body, headers: 503 if not s.received else 200
    config, _ = config_for(tmp_path, subscriber, broker=broker)
    async with running(config, tracing) as client:
        await post_hook(client, {"traceparent": CALLER})
        await subscriber.wait_for(lambda s: len(s.delivered()) == 1)
        attempts = await spans_named(exporter, "deliver", 2)
    first, second = sorted(attempts, key=lambda span: span.start_time or 0)
    assert first.attributes is not None and second.attributes is not None
    assert (first.attributes["relay.attempt"], second.attributes["relay.attempt"]) == (1, 2)
    assert first.attributes["http.response.status_code"] == 503
    assert first.status.status_code.name == "ERROR"
    assert second.attributes["http.response.status_code"] == 200
    assert first.attributes["relay.retry_wait_s"] == 0
    assert second.attributes["relay.retry_wait_s"] == pytest.approx(0.05)
    # every attempt sent its own span id, all in the caller's trace
    sent = [trace_of(r.headers["traceparent"]) for r in subscriber.received]
    assert sent == [(CALLER_TRACE, hexes(first)[1]), (CALLER_TRACE, hexes(second)[1])]


async def test_binary_mode_carries_the_context_in_ce_headers(
    broker: Broker,
    subscriber: Subscriber,
    tmp_path: Path,
    tracing: Tracing,
    exporter: InMemorySpanExporter,
) -> None:
    config, topics = config_for(tmp_path, subscriber, broker=broker, mode="binary")
    async with running(config, tracing) as client:
        await post_hook(client, {"traceparent": CALLER})
        await subscriber.wait_for(lambda s: len(s.delivered()) == 1)
        [deliver] = await spans_named(exporter, "deliver")
        [record] = await consume(broker.bootstrap, topics["events"], 1)
    [receive] = named(exporter, "receive")
    headers = dict(record.headers)
    assert trace_of(headers["ce_traceparent"].decode()) == (CALLER_TRACE, hexes(receive)[1])
    assert headers["traceparent"] == headers["ce_traceparent"]  # W3C's header, for consumers
    assert "traceparent" not in json.loads(record.value)  # the value is the bare data
    assert parent_of(deliver) == hexes(receive)[1]
    [got] = subscriber.delivered()
    assert trace_of(got.headers["traceparent"]) == (CALLER_TRACE, hexes(deliver)[1])


async def test_one_trace_through_the_embedded_log(
    subscriber: Subscriber, tmp_path: Path, tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    config, _ = config_for(tmp_path, subscriber)
    async with running(config, tracing) as client:
        await post_hook(client, {"traceparent": CALLER})
        await subscriber.wait_for(lambda s: len(s.delivered()) == 1)
        [deliver] = await spans_named(exporter, "deliver")
    [receive] = named(exporter, "receive")
    [publish] = named(exporter, "publish")
    assert parent_of(receive) == CALLER_SPAN
    assert parent_of(deliver) == hexes(receive)[1]
    assert publish.attributes is not None
    assert publish.attributes["messaging.system"] == "relay_embedded_log"
    assert "relay.partitions" not in publish.attributes  # one log, no partitions
    assert float(publish.attributes["relay.batch_wait_ms"]) >= 0  # type: ignore[arg-type]
    [got] = subscriber.delivered()
    assert trace_of(got.headers["traceparent"]) == (CALLER_TRACE, hexes(deliver)[1])
    assert trace_of(json.loads(got.body)["traceparent"]) == (CALLER_TRACE, hexes(receive)[1])


async def test_rejected_requests_are_spans_with_their_outcome(
    subscriber: Subscriber, tmp_path: Path, tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    config, _ = config_for(tmp_path, subscriber)
    async with running(config, tracing) as client:
        wrong = await client.post(
            "/v1/hooks/nexloo", data=BODY, headers={"X-Relay-Token": "wrong", "traceparent": CALLER}
        )
        malformed = await client.post(
            "/v1/hooks/nexloo",
            data=b"{not json",
            headers={"X-Relay-Token": TOKEN, "Content-Type": "application/json"},
        )
        assert (wrong.status, malformed.status) == (401, 400)
    outcomes = {
        span.attributes["relay.outcome"]: span
        for span in named(exporter, "receive")
        if span.attributes is not None
    }
    assert set(outcomes) == {"unauthorized", "malformed_json"}
    assert parent_of(outcomes["unauthorized"]) == CALLER_SPAN
    assert outcomes["unauthorized"].attributes["http.response.status_code"] == 401  # type: ignore[index]
    [normalize] = named(exporter, "normalize")  # only the authenticated body was normalized
    assert normalize.status.status_code.name == "ERROR"


async def test_off_nothing_is_traced_and_nothing_is_sent(
    subscriber: Subscriber, tmp_path: Path
) -> None:
    config, _ = config_for(tmp_path, subscriber)
    assert telemetry.start(config, environ={}) is None
    async with running(config, None) as client:
        await post_hook(client, {"traceparent": CALLER})
        await subscriber.wait_for(lambda s: len(s.delivered()) == 1)
    [got] = subscriber.delivered()
    assert "traceparent" not in got.headers
    assert "traceparent" not in json.loads(got.body)


class Collector:
    """A stand-in OTLP/HTTP collector: keeps every ExportTraceServiceRequest posted to it."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.content_types: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.content_types.append(request.headers.get("Content-Type", ""))
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.read())
        self.requests.append(export)
        return web.Response(status=200)

    def spans(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(service name, span name, attributes) of every span received."""
        found = []
        for export in self.requests:
            for resource_spans in export.resource_spans:
                resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope in resource_spans.scope_spans:
                    for span in scope.spans:
                        attributes = {a.key: a.value for a in span.attributes}
                        found.append((resource["service.name"], span.name, attributes))
        return found


async def test_spans_are_exported_over_otlp_http(subscriber: Subscriber, tmp_path: Path) -> None:
    collector = Collector()
    app = web.Application()
    app.router.add_post("/v1/traces", collector.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        endpoint = str(server.make_url("/")).rstrip("/")
        extra = f"telemetry: {{otlp_endpoint: '{endpoint}', service_name: relay-test}}"
        config, _ = config_for(tmp_path, subscriber, extra=extra)
        tracing = telemetry.start(config, environ={})
        assert tracing is not None
        async with running(config, tracing) as client:
            event_id = await post_hook(client, {"traceparent": CALLER})
            await subscriber.wait_for(lambda s: len(s.delivered()) == 1)
        # stopping the app flushed the batch processor to the collector
        spans = collector.spans()
    finally:
        await server.close()
    assert set(collector.content_types) == {"application/x-protobuf"}
    names = {name for _, name, _ in spans}
    assert {"receive", "normalize", "publish", "deliver"} <= names
    assert {service for service, _, _ in spans} == {"relay-test"}
    [deliver] = [attrs for _, name, attrs in spans if name == "deliver"]
    assert deliver["cloudevents.event_id"].string_value == event_id


async def test_a_failing_collector_never_fails_a_request(
    subscriber: Subscriber, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Export runs on the SDK's own thread: a collector that is not there costs no 5xx."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1")  # the exporter's own give-up
    extra = "telemetry: {otlp_endpoint: 'http://127.0.0.1:9'}"  # discard port: refused
    config, _ = config_for(tmp_path, subscriber, extra=extra)
    tracing = telemetry.start(config, environ={})
    assert tracing is not None
    async with running(config, tracing) as client:
        await post_hook(client)  # 202, while the exporter's thread is refused and retries
        await subscriber.wait_for(lambda s: len(s.delivered()) == 1)


async def test_a_spooled_publish_says_so_and_the_trace_survives_the_outage(
    own_broker: Broker,
    subscriber: Subscriber,
    tmp_path: Path,
    tracing: Tracing,
    exporter: InMemorySpanExporter,
) -> None:
    """Kafka away: the publish span says the records went to the spool (its wait included);
    once drained, the event is delivered in the same trace."""
    config, _ = config_for(
        tmp_path,
        subscriber,
        broker=own_broker,
        kafka="spool_after: 300ms, request_timeout_ms: 3000",
    )
    async with running(config, tracing) as client:
        own_broker.process.send_signal(signal.SIGSTOP)
        try:
            await post_hook(client, {"traceparent": CALLER})  # 202 from the spool
        finally:
            own_broker.process.send_signal(signal.SIGCONT)
        await subscriber.wait_for(lambda s: len(s.delivered()) >= 1, within=30)
        # At-least-once: a batch already handed to the stopped broker still lands after
        # SIGCONT, beside the spool's copy (KafkaBus._timed_out), so under load a second
        # copy may arrive. Each copy is checked, not how many there are.
        copies = {trace_of(got.headers["traceparent"]) for got in subscriber.delivered()}
        await poll_until(
            lambda: copies <= {hexes(span) for span in named(exporter, "deliver")},
            within=10,
            what="a deliver span for each copy",
        )
    [publish] = named(exporter, "publish")
    assert publish.attributes is not None and publish.attributes["relay.spooled"] is True
    assert "relay.partitions" not in publish.attributes  # Kafka placed nothing
    assert {trace for trace, _ in copies} == {CALLER_TRACE}


async def test_changing_telemetry_needs_a_restart(subscriber: Subscriber, tmp_path: Path) -> None:
    path = tmp_path / "relay.yaml"
    text = f"data_dir: {tmp_path}\nadmin: {{token: admin-secret}}\n"
    path.write_text(text)
    client: TestClient[Any, Any] = TestClient(TestServer(build_app(load(path), config_path=path)))
    await client.start_server()
    try:
        path.write_text(text + "telemetry: {otlp_endpoint: 'http://127.0.0.1:4318'}\n")
        response = await client.post(
            "/admin/reload", headers={"Authorization": "Bearer admin-secret"}
        )
        assert response.status == 409
        assert "telemetry needs a restart" in (await response.json())["detail"]
    finally:
        await client.close()


async def test_a_replay_continues_the_events_trace(
    subscriber: Subscriber, tmp_path: Path, tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    """relay replay's attempts are spans in the trace the event was made in."""
    config, _ = config_for(tmp_path, subscriber)
    async with running(config, tracing) as client:
        await post_hook(client, {"traceparent": CALLER})
        await subscriber.wait_for(lambda s: len(s.delivered()) == 1)
        await spans_named(exporter, "deliver")
    # the app's provider and exporter stopped with it, as a process's would: relay replay
    # is a process of its own
    replayed_spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(replayed_spans))
    stats = await replay(config, "crm", Since(0), tracing=Tracing(provider))
    assert stats.delivered == 1
    [again] = await spans_named(replayed_spans, "deliver")
    assert hexes(again)[0] == CALLER_TRACE
    replayed = subscriber.delivered()[-1]
    assert trace_of(replayed.headers["traceparent"]) == (CALLER_TRACE, hexes(again)[1])
