"""One subscriber's sender against a real local HTTP subscriber: each attempt's outcome,
retries and what each failed attempt is told, the retry budget across restarts, the
breaker, the rate limit and the slots an attempt holds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from structlog.testing import capture_logs

from relay.delivery.breaker import Rule
from relay.delivery.retry import AttemptFailed
from relay.delivery.sender import (
    USER_AGENT,
    DeliveryResult,
    Sender,
    _describe,
    breaker_rule,
    fixed_headers,
)
from relay.telemetry.otel import Tracing
from tests.subscriber import Script, Subscriber
from tests.support import free_port, make_config

Told = tuple[str, int, int | None, str, float | None]


class Failures:
    """An ``on_failure`` that records what it is told."""

    def __init__(self) -> None:
        self.told: list[Told] = []

    async def __call__(
        self, event_id: str, attempt: int, failure: AttemptFailed, retry_in: float | None
    ) -> None:
        self.told.append((event_id, attempt, failure.status, failure.error, retry_in))


def sender_for(url: str, extra: str = "") -> Sender:
    config = make_config(f'subscribers: [{{name: crm, url: "{url}"{extra}}}]')
    return Sender(config.subscribers[0])


FAST = ", retry: {max_attempts: 3, initial: 10ms, max: 10ms, jitter: false}"


def answers(*statuses: int) -> Script:
    """A script answering these statuses in turn, then the last one for good."""
    queue = list(statuses)

    def script(sub: Subscriber, body: bytes, headers: dict[str, str]) -> int:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return script


@pytest.fixture
async def started() -> AsyncIterator[list[Sender]]:
    """Senders a test starts are closed after it."""
    senders: list[Sender] = []
    yield senders
    for sender in senders:
        await sender.close()


async def start(senders: list[Sender], sender: Sender) -> Sender:
    await sender.start()
    senders.append(sender)
    return sender


async def test_a_retried_event_tells_each_failure_and_its_wait_then_is_delivered(
    subscriber: Subscriber, started: list[Sender]
) -> None:
    subscriber.script = answers(503, 500, 204)
    failures = Failures()
    sender = await start(started, sender_for(subscriber.url, FAST))
    result = await sender.deliver(
        "evt_1", b'{"n": 1}', "application/json", {"ce-id": "evt_1"}, on_failure=failures
    )
    assert (result.delivered, result.attempts, result.status) == (True, 3, 204)
    assert (result.error, result.reason) == (None, None)
    assert 0 < result.seconds < 60
    assert failures.told == [
        ("evt_1", 1, 503, "HTTP 503: nope", 0.01),
        ("evt_1", 2, 500, "HTTP 500: nope", 0.01),
    ]
    assert [r.body for r in subscriber.received] == [b'{"n": 1}'] * 3
    assert {r.headers["webhook-id"] for r in subscriber.received} == {"evt_1"}
    # every attempt, retried ones too, with its content type and extra headers
    assert {(r.headers["Content-Type"], r.headers["ce-id"]) for r in subscriber.received} == {
        ("application/json", "evt_1")
    }


async def test_a_delivered_first_attempt_is_one_attempt_and_tells_nothing(
    subscriber: Subscriber, started: list[Sender]
) -> None:
    failures = Failures()
    sender = await start(started, sender_for(subscriber.url, FAST))
    result = await sender.deliver("evt_1", b"{}", "application/json", on_failure=failures)
    assert result == DeliveryResult(delivered=True, attempts=1, status=200, seconds=result.seconds)
    assert 0 < result.seconds < 60
    assert failures.told == []


async def test_an_endpoint_failing_every_attempt_exhausts_the_budget(
    subscriber: Subscriber, started: list[Sender]
) -> None:
    subscriber.script = answers(500)
    failures = Failures()
    sender = await start(started, sender_for(subscriber.url, FAST))
    result = await sender.deliver("evt_1", b"{}", "application/json", on_failure=failures)
    assert (result.delivered, result.attempts, result.status) == (False, 3, 500)
    assert (result.error, result.reason) == ("HTTP 500: nope", "exhausted")
    assert 0 < result.seconds < 60
    assert failures.told == [
        ("evt_1", n, 500, "HTTP 500: nope", wait) for n, wait in ((1, 0.01), (2, 0.01), (3, None))
    ]
    assert len(subscriber.received) == 3


async def test_attempts_made_before_a_restart_count_against_the_budget(
    subscriber: Subscriber, started: list[Sender]
) -> None:
    subscriber.script = answers(500)
    sender = await start(started, sender_for(subscriber.url, FAST))
    failures = Failures()
    result = await sender.deliver(
        "evt_1", b"{}", "application/json", prior_attempts=1, on_failure=failures
    )
    assert (result.attempts, result.reason) == (3, "exhausted")
    assert [(t[1], t[4]) for t in failures.told] == [(2, 0.01), (3, None)]
    assert len(subscriber.received) == 2
    # one attempt left: the first is the last, told with no wait
    last = Failures()
    result = await sender.deliver(
        "evt_2", b"{}", "application/json", prior_attempts=2, on_failure=last
    )
    assert (result.attempts, result.reason, result.status) == (3, "exhausted", 500)
    assert [(t[1], t[4]) for t in last.told] == [(3, None)]
    assert len(subscriber.received) == 3
    # none left: nothing goes out
    spent = await sender.deliver(
        "evt_3", b"{}", "application/json", prior_attempts=3, on_failure=last
    )
    assert spent == DeliveryResult(
        delivered=False,
        attempts=3,
        error="retry budget used up before a restart",
        reason="exhausted",
    )
    assert len(subscriber.received) == 3 and len(last.told) == 1


async def test_a_4xx_is_rejected_at_once_unless_4xx_are_retried(
    subscriber: Subscriber, started: list[Sender]
) -> None:
    subscriber.script = answers(404, 200)
    failures = Failures()
    sender = await start(started, sender_for(subscriber.url, FAST))
    result = await sender.deliver("evt_1", b"{}", "application/json", on_failure=failures)
    assert (result.delivered, result.attempts, result.status) == (False, 1, 404)
    assert (result.error, result.reason) == ("HTTP 404: nope", "rejected")
    assert failures.told == [("evt_1", 1, 404, "HTTP 404: nope", None)]
    subscriber.script = answers(404, 200)
    retried = await start(started, sender_for(subscriber.url, FAST + ", on_4xx: retry"))
    result = await retried.deliver("evt_2", b"{}", "application/json")
    assert (result.delivered, result.attempts, result.status) == (True, 2, 200)


async def test_410_is_gone_and_never_retried_even_when_4xx_are(
    subscriber: Subscriber, started: list[Sender]
) -> None:
    subscriber.script = answers(410, 200)
    failures = Failures()
    sender = await start(started, sender_for(subscriber.url, FAST + ", on_4xx: retry"))
    result = await sender.deliver("evt_1", b"{}", "application/json", on_failure=failures)
    assert (result.delivered, result.attempts, result.status) == (False, 1, 410)
    assert (result.error, result.reason) == ("HTTP 410: nope", "gone")
    assert failures.told == [("evt_1", 1, 410, "HTTP 410: nope", None)]
    assert len(subscriber.received) == 1


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_sets_the_wait_on_429_and_503_and_nothing_else(
    subscriber: Subscriber, started: list[Sender], status: int
) -> None:
    queue = [status, status, 500, 200]

    def script(sub: Subscriber, body: bytes, headers: dict[str, str]) -> object:
        return (queue.pop(0), {"Retry-After": "0"})

    subscriber.script = script
    failures = Failures()
    slow = ", retry: {max_attempts: 4, initial: 20ms, max: 20ms, jitter: false}"
    sender = await start(started, sender_for(subscriber.url, slow))
    result = await sender.deliver("evt_1", b"{}", "application/json", on_failure=failures)
    assert (result.delivered, result.attempts) == (True, 4)
    # the first wait (before tenacity) and a later one (tenacity's) both take Retry-After
    assert [(t[1], t[2], t[4]) for t in failures.told] == [
        (1, status, 0.0),
        (2, status, 0.0),
        (3, 500, 0.02),
    ]


async def test_the_error_keeps_512_bytes_of_the_answer_stripped_and_none_when_empty(
    started: list[Sender],
) -> None:
    bodies = [b"  " + b"x" * 600, b"\n \n", "caf\u00e9 \u2603".encode()[:-1]]

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=400, body=bodies.pop(0))

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        sender = await start(started, sender_for(str(server.make_url("/hook"))))
        long, empty, broken = [
            await sender.deliver(f"evt_{n}", b"{}", "application/json") for n in range(3)
        ]
    finally:
        await server.close()
    assert long.error == "HTTP 400: " + "x" * 510
    assert empty.error == "HTTP 400"
    assert broken.error == "HTTP 400: caf\u00e9 \ufffd"


async def test_a_connection_that_fails_is_retried_and_named_with_its_error(
    started: list[Sender],
) -> None:
    failures = Failures()
    sender = await start(started, sender_for(f"http://127.0.0.1:{free_port()}/hook", FAST))
    result = await sender.deliver("evt_1", b"{}", "application/json", on_failure=failures)
    assert (result.delivered, result.attempts, result.status, result.reason) == (
        False,
        3,
        None,
        "exhausted",
    )
    assert result.error is not None and result.error.startswith("ConnectError: cannot connect")
    assert [(t[1], t[2], t[4]) for t in failures.told] == [
        (1, None, 0.01),
        (2, None, 0.01),
        (3, None, None),
    ]


async def test_a_timeout_is_retryable_and_named_with_its_error(
    subscriber: Subscriber, started: list[Sender]
) -> None:
    subscriber.delay = 2.0
    sender = await start(
        started, sender_for(subscriber.url, ", timeout: 50ms, retry: {max_attempts: 1}")
    )
    result = await sender.deliver("evt_1", b"{}", "application/json")
    assert (result.delivered, result.attempts, result.reason) == (False, 1, "exhausted")
    assert result.error == "TimeoutError: no answer within 0.05 s"


def test_an_error_without_a_message_is_named_by_its_type_alone() -> None:
    assert _describe(ConnectionResetError()) == "ConnectionResetError"
    assert _describe(OSError("down")) == "OSError: down"


async def test_a_sender_not_started_or_closed_sends_nothing(subscriber: Subscriber) -> None:
    sender = sender_for(subscriber.url)
    with pytest.raises(RuntimeError, match=r"^sender is not started$"):
        await sender.deliver("evt_1", b"{}", "application/json")
    await sender.start()
    await sender.close()
    await sender.close()  # twice is fine
    with pytest.raises(RuntimeError, match=r"^sender is not started$"):
        await sender.deliver("evt_2", b"{}", "application/json")
    assert subscriber.received == []


BREAKER = ", circuit_breaker: {min_attempts: 2, no_success_for: 1ms, cooldown: 10ms}"


@pytest.mark.parametrize("status", [408, 429, 500])
async def test_failing_answers_open_the_breaker_and_a_probe_that_succeeds_closes_it(
    subscriber: Subscriber, started: list[Sender], status: int
) -> None:
    subscriber.script = answers(status)
    sender = await start(
        started, sender_for(subscriber.url, BREAKER + ", retry: {max_attempts: 1}")
    )
    await sender.deliver("evt_1", b"{}", "application/json")
    await asyncio.sleep(0.01)  # past no_success_for
    await sender.deliver("evt_2", b"{}", "application/json")
    opened = sender.breaker.state
    subscriber.script = answers(200)
    result = await sender.deliver("evt_3", b"{}", "application/json")  # waits out the cooldown
    assert result.delivered
    assert (opened, sender.breaker.state) == ("open", "closed")
    assert sender.breaker._probes == {}


async def test_a_connection_error_opens_the_breaker_and_a_failed_probe_reopens_it(
    started: list[Sender],
) -> None:
    sender = await start(
        started,
        sender_for(f"http://127.0.0.1:{free_port()}/hook", BREAKER + ", retry: {max_attempts: 1}"),
    )
    await sender.deliver("evt_1", b"{}", "application/json")
    await asyncio.sleep(0.01)
    await sender.deliver("evt_2", b"{}", "application/json")
    assert sender.breaker.state == "open"
    await sender.deliver("evt_3", b"{}", "application/json")  # a probe, refused again
    assert sender.breaker.state == "open"
    assert sender.breaker._wait == 0.02  # the cooldown doubled by the failed probe
    assert sender.breaker._probes == {}


async def test_answers_that_are_not_failures_keep_the_breaker_closed(
    subscriber: Subscriber, started: list[Sender]
) -> None:
    subscriber.script = answers(404)
    sender = await start(
        started, sender_for(subscriber.url, BREAKER + ", retry: {max_attempts: 1}")
    )
    for n in range(3):
        await sender.deliver(f"evt_{n}", b"{}", "application/json")
        await asyncio.sleep(0.01)
    assert sender.breaker.state == "closed"


async def test_a_header_that_cannot_be_sent_does_not_count_against_the_breaker(
    subscriber: Subscriber, started: list[Sender]
) -> None:
    sender = await start(
        started, sender_for(subscriber.url, BREAKER + ", retry: {max_attempts: 3}")
    )
    for n in range(3):
        result = await sender.deliver(f"evt_{n}", b"{}", "application/json", {"ce-subject": "a\nb"})
        assert (result.reason, result.attempts) == ("rejected", 1)
        await asyncio.sleep(0.01)
    assert sender.breaker.state == "closed"
    assert sender.breaker._failures_since_success == 0


async def test_each_attempt_takes_a_token_from_the_rate_limit(
    subscriber: Subscriber, started: list[Sender]
) -> None:
    sender = await start(started, sender_for(subscriber.url, ", rate_limit: 1/m"))
    assert sender.limiter is not None and sender.limiter.rate == pytest.approx(1 / 60)
    await sender.deliver("evt_1", b"{}", "application/json")
    assert sender.limiter.try_acquire() > 0  # the one token of the burst went out
    assert sender_for(subscriber.url).limiter is None


@pytest.mark.parametrize("slots", [1, 3])
async def test_attempts_in_flight_are_bounded_by_max_in_flight(
    subscriber: Subscriber, started: list[Sender], slots: int
) -> None:
    subscriber.delay = 0.05
    sender = await start(started, sender_for(subscriber.url, f", max_in_flight: {slots}"))
    results = await asyncio.gather(
        *(sender.deliver(f"evt_{n}", b"{}", "application/json") for n in range(4))
    )
    assert all(r.delivered for r in results)
    assert subscriber.max_in_flight == slots


async def test_each_request_has_its_content_type_extra_headers_and_the_fixed_ones(
    subscriber: Subscriber, started: list[Sender]
) -> None:
    sender = await start(started, sender_for(subscriber.url, ", headers: {X-Tenant: loja}"))
    await sender.deliver("evt_1", b"{}", "application/json", {"ce-id": "evt_1", "ce-type": "t"})
    await sender.deliver("evt_2", b"{}", "application/cloudevents+json")
    first, second = subscriber.received
    assert first.headers["Content-Type"] == "application/json"
    assert (first.headers["ce-id"], first.headers["ce-type"]) == ("evt_1", "t")
    assert second.headers["Content-Type"] == "application/cloudevents+json"
    assert "ce-id" not in second.headers
    for got in (first, second):
        assert got.headers["User-Agent"] == USER_AGENT
        assert got.headers["X-Tenant"] == "loja"
        assert "webhook-signature" not in got.headers  # no secret configured
        assert int(got.headers["webhook-timestamp"]) > 1_700_000_000


def test_fixed_headers_leave_out_what_each_request_sets() -> None:
    config = make_config(
        """
subscribers:
  - name: crm
    url: http://127.0.0.1:9/hook
    headers: {user-agent: mine, Content-Type: text/plain, CE-Id: x,
              Webhook-Id: a, webhook-timestamp: "1", Webhook-Signature: s, TraceParent: t,
              tracestate: s, X-Tenant: loja}
"""
    )
    assert fixed_headers(config.subscribers[0]) == {"user-agent": "mine", "X-Tenant": "loja"}
    plain = make_config("subscribers: [{name: crm, url: http://127.0.0.1:9/hook}]")
    assert fixed_headers(plain.subscribers[0]) == {"User-Agent": USER_AGENT}


def test_the_breaker_rule_is_the_configured_one() -> None:
    config = make_config(
        """
subscribers:
  - name: crm
    url: http://127.0.0.1:9/hook
    circuit_breaker: {window: 7s, failure_rate: 0.5, min_attempts: 3, no_success_for: 2s,
                      cooldown: 1s, cooldown_max: 9s, half_open_attempts: 2}
"""
    )
    assert breaker_rule(config.subscribers[0]) == Rule(
        window=7.0,
        failure_rate=0.5,
        min_attempts=3,
        no_success_for=2.0,
        cooldown=1.0,
        cooldown_max=9.0,
        half_open_attempts=2,
    )


async def test_a_4xx_after_a_retry_ends_the_retries_at_once(
    subscriber: Subscriber, started: list[Sender]
) -> None:
    subscriber.script = answers(503, 404, 200)
    sender = await start(started, sender_for(subscriber.url, FAST))
    result = await sender.deliver("evt_1", b"{}", "application/json")
    assert (result.delivered, result.attempts, result.status, result.reason) == (
        False,
        2,
        404,
        "rejected",
    )
    assert len(subscriber.received) == 2


async def test_waits_are_jittered_below_the_backoff_when_jitter_is_on(
    subscriber: Subscriber, started: list[Sender]
) -> None:
    subscriber.script = answers(500)
    failures = Failures()
    jittered = ", retry: {max_attempts: 4, initial: 10ms, max: 10ms, jitter: true}"
    sender = await start(started, sender_for(subscriber.url, jittered))
    await sender.deliver("evt_1", b"{}", "application/json", on_failure=failures)
    waits = [t[4] for t in failures.told]
    assert waits[-1] is None and len(waits) == 4
    assert all(wait is not None and 0 <= wait < 0.01 for wait in waits[:-1])


async def test_the_breakers_lines_name_the_subscriber(
    subscriber: Subscriber, started: list[Sender]
) -> None:
    subscriber.script = answers(500)
    sender = await start(
        started, sender_for(subscriber.url, BREAKER + ", retry: {max_attempts: 1}")
    )
    with capture_logs() as logs:
        await sender.deliver("evt_1", b"{}", "application/json")
        await asyncio.sleep(0.01)
        await sender.deliver("evt_2", b"{}", "application/json")
    [opened] = [line for line in logs if line["event"] == "circuit_opened"]
    assert opened["subscriber"] == "crm"


async def test_a_300_is_not_a_delivery(subscriber: Subscriber, started: list[Sender]) -> None:
    subscriber.script = answers(300)
    sender = await start(started, sender_for(subscriber.url, FAST))
    result = await sender.deliver("evt_1", b"{}", "application/json")
    assert (result.delivered, result.status, result.reason) == (False, 300, "rejected")


async def test_a_probe_answered_5xx_reopens_and_one_answered_4xx_closes(
    subscriber: Subscriber, started: list[Sender]
) -> None:
    subscriber.script = answers(500)
    sender = await start(
        started, sender_for(subscriber.url, BREAKER + ", retry: {max_attempts: 1}")
    )
    await sender.deliver("evt_1", b"{}", "application/json")
    await asyncio.sleep(0.01)
    await sender.deliver("evt_2", b"{}", "application/json")
    await sender.deliver("evt_3", b"{}", "application/json")  # a probe, answered 500
    reopened, wait = sender.breaker.state, sender.breaker._wait
    subscriber.script = answers(404)
    await sender.deliver("evt_4", b"{}", "application/json")  # a probe, answered 404
    assert (reopened, wait, sender.breaker.state) == ("open", 0.02, "closed")


CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def traced(url: str, extra: str = "") -> tuple[Sender, InMemorySpanExporter]:
    """A sender with relay's tracing, its spans kept in memory as each one ends."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    config = make_config(f'subscribers: [{{name: crm, url: "{url}"{extra}}}]')
    return Sender(config.subscribers[0], tracing=Tracing(provider)), exporter


def delivers(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    spans = [span for span in exporter.get_finished_spans() if span.name == "deliver"]
    assert len(spans) == len(exporter.get_finished_spans())
    return spans


async def test_a_traced_delivery_has_a_span_per_attempt_under_the_events_trace(
    subscriber: Subscriber, started: list[Sender]
) -> None:
    subscriber.script = answers(503, 500, 204)
    failures = Failures()
    sender, exporter = traced(
        subscriber.url, ", retry: {max_attempts: 4, initial: 10ms, max: 10ms, jitter: false}"
    )
    await start(started, sender)
    result = await sender.deliver(
        "evt_1",
        b'{"n": 1}',
        "application/json",
        {"ce-id": "evt_1"},
        prior_attempts=1,
        on_failure=failures,
        traceparent=f"00-{CALLER_TRACE}-{CALLER_SPAN}-01",
        tracestate="vendor=7",
    )
    assert (result.delivered, result.attempts, result.status) == (True, 4, 204)
    assert 0 < result.seconds < 60
    # the wrapped on_failure still tells each failure, and its wait reaches the next span
    assert failures.told == [
        ("evt_1", 2, 503, "HTTP 503: nope", 0.01),
        ("evt_1", 3, 500, "HTTP 500: nope", 0.01),
    ]
    spans = delivers(exporter)
    assert [span.attributes["relay.attempt"] for span in spans] == [2, 3, 4]
    assert [span.attributes["relay.retry_wait_s"] for span in spans] == [0.0, 0.01, 0.01]
    assert [span.attributes["http.response.status_code"] for span in spans] == [503, 500, 204]
    for span in spans:
        assert span.kind is SpanKind.CLIENT
        assert span.context.trace_id == int(CALLER_TRACE, 16)
        assert span.parent is not None and span.parent.span_id == int(CALLER_SPAN, 16)
        assert dict(span.context.trace_state) == {"vendor": "7"}
        assert {
            name: span.attributes[name]
            for name in (
                "http.request.method",
                "relay.subscriber",
                "cloudevents.event_id",
                "server.address",
            )
        } == {
            "http.request.method": "POST",
            "relay.subscriber": "crm",
            "cloudevents.event_id": "evt_1",
            "server.address": "127.0.0.1",
        }
    # each attempt, retried ones too, sent whole and with its own span's traceparent
    assert [r.headers["traceparent"] for r in subscriber.received] == [
        f"00-{CALLER_TRACE}-{span.context.span_id:016x}-01" for span in spans
    ]
    for got in subscriber.received:
        assert got.body == b'{"n": 1}'
        assert got.headers["tracestate"] == "vendor=7"
        assert (got.headers["Content-Type"], got.headers["ce-id"]) == ("application/json", "evt_1")
        assert got.headers["webhook-id"] == "evt_1"


async def test_a_traced_attempt_rejected_at_once_is_one_failed_span(
    subscriber: Subscriber, started: list[Sender]
) -> None:
    subscriber.script = answers(400)
    failures = Failures()
    sender, exporter = traced(subscriber.url, FAST)
    await start(started, sender)
    result = await sender.deliver("evt_1", b"{}", "application/json", on_failure=failures)
    assert (result.delivered, result.attempts, result.reason) == (False, 1, "rejected")
    assert failures.told == [("evt_1", 1, 400, "HTTP 400: nope", None)]
    (span,) = delivers(exporter)
    assert span.parent is None  # no trace context: a root
    assert span.attributes["relay.attempt"] == 1
    assert span.attributes["http.response.status_code"] == 400
    assert span.attributes["relay.retryable"] is False
    (got,) = subscriber.received
    assert got.headers["traceparent"] == (
        f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}"
        f"-{span.context.trace_flags:02x}"
    )
