"""relay's spans, through the OpenTelemetry SDK (imported only when tracing is on).

One trace follows one webhook: ``receive`` (SERVER, continuing the caller's ``traceparent``
or a new root) holds ``normalize`` and ``publish`` (PRODUCER); each event carries the
receive span's context as its ``traceparent``/``tracestate`` attributes (the CloudEvents
distributed-tracing extension), and every delivery attempt is a ``deliver`` span (CLIENT)
under it, whose own ``traceparent`` the subscriber receives, so the subscriber's spans
join the same trace. Span and attribute names are listed in docs/tracing.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from relay import __version__
from relay.bus.base import Bus, PublishProbe, Record
from relay.delivery.retry import AttemptFailed
from relay.events import CloudEvent
from relay.providers.base import Inbound, Normalizer

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
_MAX_TRACEPARENT = 512
_MAX_TRACESTATE = 512
_MAX_NAME = 64
_MAX_IDS = 100
"""Event ids kept on one span (a body may make up to limits.max_events_per_body events)."""

# Headers are anyone's to send: what the propagator would say about a malformed one must
# not become a log line per request.
for _noisy in ("opentelemetry.trace.span", "opentelemetry.trace.propagation.tracecontext"):
    logging.getLogger(_noisy).setLevel(logging.ERROR)


class _Headers(Getter[Mapping[str, str]]):
    """Reads ``traceparent``/``tracestate`` from request headers (aiohttp's, or a dict).

    Every ``tracestate`` field counts (a multi-dict gives them all); an over-long value is no
    value, so the propagator starts a new root instead of parsing it.
    """

    def get(self, carrier: Mapping[str, str], key: str) -> list[str] | None:
        getall = getattr(carrier, "getall", None)
        values: list[str] = (
            list(getall(key, ()))
            if getall is not None
            else ([v] if (v := carrier.get(key)) else [])
        )
        if not values:
            return None
        limit = _MAX_TRACEPARENT if key == TRACEPARENT else _MAX_TRACESTATE
        if sum(len(value) for value in values) > limit:
            return None
        return values

    def keys(self, carrier: Mapping[str, str]) -> list[str]:
        return list(carrier.keys())


_getter = _Headers()


class AttemptTrace:
    """One delivery's attempts: a ``deliver`` span each, under the event's trace context.

    ``watch`` wraps the sender's ``on_failure`` so the wait it announces before the next
    attempt lands on that attempt's span (``relay.retry_wait_s``).
    """

    __slots__ = ("_attempt", "_parent", "_tracing", "_wait", "attributes")

    def __init__(
        self, tracing: Tracing, parent: Context, attributes: dict[str, Any], attempt: int
    ) -> None:
        self._tracing = tracing
        self._parent = parent
        self._attempt = attempt
        self._wait = 0.0
        self.attributes = attributes

    def watch(
        self, on_failure: Callable[[str, int, AttemptFailed, float | None], Awaitable[None]]
    ) -> Callable[[str, int, AttemptFailed, float | None], Awaitable[None]]:
        async def watched(
            event_id: str, attempt: int, failure: AttemptFailed, retry_in: float | None
        ) -> None:
            self._wait = retry_in or 0.0
            await on_failure(event_id, attempt, failure, retry_in)

        return watched

    async def run(
        self,
        attempt: Callable[[str, bytes, str, dict[str, str] | None], Awaitable[int]],
        event_id: str,
        body: bytes,
        content_type: str,
        extra: dict[str, str] | None,
    ) -> int:
        """``attempt(...)`` (one POST) inside its span, with the span's ``traceparent`` sent."""
        self._attempt += 1
        tracing = self._tracing
        # not made current: nothing below reads it, and attaching costs a context switch
        span = tracing.tracer.start_span(
            "deliver",
            context=self._parent,
            kind=SpanKind.CLIENT,
            attributes={
                **self.attributes,
                "relay.attempt": self._attempt,
                "relay.retry_wait_s": round(self._wait, 6),
            },
        )
        try:
            headers = dict(extra) if extra else {}
            tracing.propagator.inject(headers, context=trace.set_span_in_context(span))
            status = await attempt(event_id, body, content_type, headers)
        except AttemptFailed as failure:
            if failure.status is not None:
                span.set_attribute("http.response.status_code", failure.status)
                span.set_attribute("error.type", str(failure.status))
            else:
                span.set_attribute("error.type", failure.error.partition(":")[0][:_MAX_NAME])
            span.set_attribute("relay.retryable", failure.retryable)
            span.set_status(Status(StatusCode.ERROR, failure.error[:200]))
            raise
        except BaseException as exc:
            span.set_attribute("error.type", type(exc).__name__)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        else:
            span.set_attribute("http.response.status_code", status)
            return status
        finally:
            span.end()


class Tracing:
    """The process's tracer and W3C propagator; built once, shared by ingress and delivery."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("relay", __version__)
        self.propagator = TraceContextTextMapPropagator()

    @classmethod
    def exporting(cls, endpoint: str | None, *, service_name: str) -> Tracing:
        """Spans batched to an OTLP/HTTP collector (``endpoint`` None: the exporter's
        standard variables say where)."""
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        resource = Resource.create({SERVICE_NAME: service_name, SERVICE_VERSION: __version__})
        # relay flushes when it stops (close); the SDK's own exit hook could hold exit 30 s
        provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        return cls(provider)

    def shutdown(self) -> None:
        """Export what is buffered and stop (blocking: see :meth:`close`)."""
        self.provider.shutdown()

    async def close(self, within: float) -> bool:
        """:meth:`shutdown` off the event loop, waited for at most ``within`` seconds; False
        when the collector did not take the last spans in time. Its thread is a daemon, so an
        unreachable collector never holds the process's exit."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def finish(_: object = None) -> None:
            if not done.done():
                done.set_result(None)

        def run() -> None:
            try:
                self.shutdown()
            finally:
                with contextlib.suppress(RuntimeError):  # the loop is already closed
                    loop.call_soon_threadsafe(finish)

        threading.Thread(target=run, name="trace-export", daemon=True).start()
        try:
            async with asyncio.timeout(within):
                await done
        except TimeoutError:
            return False
        return True

    # --- ingress ---------------------------------------------------------------------

    @contextmanager
    def receive(
        self, headers: Mapping[str, str], source: str, kind: str | None, request_id: str
    ) -> Iterator[Span]:
        """The request's span, current while the handler runs: a child of the caller's
        ``traceparent`` when it sent a valid one, a new root otherwise (never an error)."""
        attributes: dict[str, Any] = {
            "http.request.method": "POST",
            "http.route": "/v1/hooks/{source}/{kind}" if kind is not None else "/v1/hooks/{source}",
            "relay.source": source[:_MAX_NAME],
            "relay.request_id": request_id,
        }
        if kind is not None:
            attributes["relay.kind"] = kind[:_MAX_NAME]
        with self.tracer.start_as_current_span(
            "receive",
            context=self.extract(headers),
            kind=SpanKind.SERVER,
            attributes=attributes,
        ) as span:
            yield span

    def extract(self, headers: Mapping[str, str]) -> Context:
        """The caller's trace context; empty (so: a new root) when it sent none or a bad one."""
        return self.propagator.extract(headers, getter=_getter)

    @staticmethod
    def answered(span: Span, outcome: str, status: int) -> None:
        span.set_attribute("relay.outcome", outcome)
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR, outcome))

    @staticmethod
    def trace_id() -> str:
        """The current trace's id (32 hex digits), for log lines."""
        return format(trace.get_current_span().get_span_context().trace_id, "032x")

    def current(self) -> tuple[str, str | None]:
        """``traceparent`` and ``tracestate`` of the current span (the receive span)."""
        carrier: dict[str, str] = {}
        self.propagator.inject(carrier)
        return carrier.get(TRACEPARENT, ""), carrier.get(TRACESTATE)

    def normalize(self, normalizer: Normalizer, inbound: Inbound) -> list[CloudEvent]:
        """``normalizer(inbound)`` in a ``normalize`` span (a child of the current one)."""
        span = self.tracer.start_span("normalize", attributes={"relay.provider": inbound.provider})
        try:
            events = normalizer(inbound)
        except BaseException as exc:  # a dead letter's reason, or a normalizer's bug
            span.record_exception(exc)
            span.set_attribute(
                "relay.deadletter_reason", getattr(exc, "reason", type(exc).__name__)
            )
            span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
            raise
        else:
            span.set_attribute("relay.event_count", len(events))
            if events:
                span.set_attribute("relay.event_ids", [e.id for e in events[:_MAX_IDS]])
            return events
        finally:
            span.end()

    async def publish(self, bus: Bus, records: Sequence[Record]) -> None:
        """``bus.publish(records)`` in a ``publish`` span: topics, partitions, batch wait."""
        topics = sorted({record.topic for record in records})
        span = self.tracer.start_span(
            "publish",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka" if bus.name == "kafka" else "relay_embedded_log",
                "messaging.operation.type": "send",
                "messaging.batch.message_count": len(records),
                "relay.topics": topics,
            },
        )
        try:
            probe = PublishProbe()
            started = time.monotonic()
            await bus.publish(records, probe)
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
            raise
        else:
            if probe.placed:
                span.set_attribute(
                    "relay.partitions", sorted({f"{t}/{p}" for t, p in probe.placed})
                )
            if probe.sent_at is not None:
                wait = max(0.0, probe.sent_at - started)
                span.set_attribute("relay.batch_wait_ms", round(wait * 1000, 3))
            if probe.spooled:
                span.set_attribute("relay.spooled", True)
        finally:
            span.end()

    # --- delivery --------------------------------------------------------------------

    def attempts(
        self,
        subscriber: str,
        event_id: str,
        traceparent: str | None,
        tracestate: str | None,
        *,
        prior_attempts: int,
        server: str | None,
    ) -> AttemptTrace:
        """The spans of one event's delivery, under the event's trace (a root without one)."""
        carrier = {}
        if traceparent:
            carrier[TRACEPARENT] = traceparent
            if tracestate:
                carrier[TRACESTATE] = tracestate
        attributes: dict[str, Any] = {
            "http.request.method": "POST",
            "relay.subscriber": subscriber,
            "cloudevents.event_id": event_id,
        }
        if server:
            attributes["server.address"] = server
        return AttemptTrace(self, self.extract(carrier), attributes, prior_attempts)
