"""The pipeline behind the HTTP handler: normalize, route, make durable.

One received body becomes one bus write: its raw copy, its canonical events on every
routed topic, or a dead letter when it cannot be normalized. The caller may
acknowledge only after :meth:`Pipeline.accept` returns, with one of three outcomes:
:class:`Accepted`, :class:`DeadLettered` (202 all the same) or :class:`Malformed` (400).
The routes, the events-per-body bound and the dedupe window come from the live settings
(:mod:`relay.live`), one snapshot per body.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from relay.bus import Bus, Record
from relay.cloudevents import encode, structured_headers, to_binary, trace_headers
from relay.config import Topics
from relay.deadletters import IngestReason, ingest_record
from relay.dedupe import Deduplicator
from relay.events import CloudEvent
from relay.live import Current, Live
from relay.metrics import EVENTS, PUBLISH_SECONDS
from relay.providers import PROVIDERS, Inbound, MalformedBody, Unmappable

if TYPE_CHECKING:
    from relay.telemetry.otel import Tracing

log = structlog.get_logger("relay.pipeline")


class _Clock:
    """Now as RFC 3339 UTC with milliseconds (``format_time``'s format), cheaply.

    The date-and-seconds part is formatted once a second; every request only adds its
    milliseconds.
    """

    __slots__ = ("prefix", "second")

    def __init__(self) -> None:
        self.second = -1
        self.prefix = ""

    def now(self) -> str:
        now = time.time()
        second = int(now)
        if second != self.second:
            self.prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self.second = second
        return f"{self.prefix}.{int((now - second) * 1000):03d}Z"


_clock = _Clock()
received_now = _clock.now
"""Now, as an Inbound's ``received_at``."""


class Accepted(msgspec.Struct, frozen=True, tag=True):
    """Every event is durable on its topics (and the raw copy)."""

    ids: list[str]


class DeadLettered(msgspec.Struct, frozen=True, tag=True):
    """Valid JSON that made no event: the body is on the dead-letter topic; still 202."""

    reason: IngestReason


class Malformed(msgspec.Struct, frozen=True, tag=True):
    """Not JSON: the sender gets a 400, and the body is kept all the same."""

    detail: str


Outcome = Accepted | DeadLettered | Malformed


class Pipeline:
    def __init__(
        self,
        bus: Bus,
        settings: Current[Any],
        topics: Topics,
        *,
        binary: bool = False,
        max_record_bytes: int | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.bus = bus
        self.tracing = tracing
        """None: no tracing, and no tracing work per request (relay.telemetry)."""
        self.binary = binary
        self.settings = settings
        """The live settings: routes, ``limits.max_events_per_body``, the dedupe window."""
        self.max_record_bytes = max_record_bytes
        """``kafka.max_record_bytes``: a larger canonical record is a dead letter."""
        self.topics = topics
        self.dedupe = Deduplicator()
        self._names: dict[str, bytes] = {}
        self._event_counters: dict[str, Any] = {}

    def _count(self, events: list[CloudEvent]) -> None:
        for event in events:
            counter = self._event_counters.get(event.type)
            if counter is None:
                counter = self._event_counters[event.type] = EVENTS.labels(event.type)
            counter.inc()

    def _name(self, text: str) -> bytes:
        """A source or provider name as bytes, encoded once (the set of names is the config's)."""
        encoded = self._names.get(text)
        if encoded is None:
            if len(self._names) > 4096:
                self._names.clear()
            encoded = self._names[text] = text.encode()
        return encoded

    def _metadata(self, inbound: Inbound) -> tuple[tuple[str, bytes], ...]:
        headers = [
            ("relay-source", self._name(inbound.source)),
            ("relay-provider", self._name(inbound.provider)),
            ("relay-request-id", inbound.request_id.encode()),
            ("relay-received-at", inbound.received_at.encode()),
        ]
        if inbound.kind is not None:
            headers.append(("relay-kind", inbound.kind.encode()))
        if inbound.content_type is not None:
            headers.append(
                ("content-type", inbound.content_type.encode("utf-8", "surrogateescape"))
            )
        if inbound.delivery_id is not None:
            headers.append(("relay-delivery-id", inbound.delivery_id.encode()))
        return tuple(headers)

    def event_records(self, event: CloudEvent, live: Live[Any]) -> list[Record]:
        key = event.partitionkey.encode()
        if self.binary:
            value, headers = to_binary(event)
        else:
            value, headers = encode(event), structured_headers(event)
        return [
            Record(topic=topic, value=value, key=key, headers=headers)
            for topic in live.router.topics_for(event)
        ]

    def _deadletter(
        self,
        inbound: Inbound,
        metadata: tuple[tuple[str, bytes], ...],
        reason: IngestReason,
        detail: str,
    ) -> Record:
        return ingest_record(
            self.topics.deadletter, inbound.body, inbound.source.encode(), metadata, reason, detail
        )

    async def accept(self, inbound: Inbound, live: Live[Any] | None = None) -> Outcome:
        """Make ``inbound`` durable under ``live``, the settings snapshot the request was
        admitted under (default: the current one); ``inbound.max_events`` should be its."""
        if live is None:
            live = self.settings.live
        metadata = self._metadata(inbound)
        tracing = self.tracing
        context = None
        if tracing is not None:
            context = tracing.current()  # the receive span's: on the raw copy and the events
            if context[0]:
                metadata += trace_headers(*context)
        records = [
            Record(
                topic=self.topics.raw,
                value=inbound.body,
                key=self._name(inbound.source),
                headers=metadata,
            )
        ]
        outcome: Outcome
        try:
            if tracing is None:
                events = PROVIDERS[inbound.provider].normalize(inbound)
            else:
                assert context is not None
                events = _normalize_traced(tracing, inbound, *context)
            if len(events) > live.max_events:  # a normalizer should have refused it first
                raise Unmappable(
                    "too_many_events",
                    f"{len(events)} events from one body (at most {live.max_events})",
                )
            encoded = [self.event_records(event, live) for event in events]
            self._check_sizes(encoded)
        except MalformedBody as exc:
            records.append(self._deadletter(inbound, metadata, "malformed_json", str(exc)))
            outcome = Malformed(str(exc))
        except Unmappable as exc:
            records.append(self._deadletter(inbound, metadata, exc.reason, exc.detail))
            outcome = DeadLettered(exc.reason)
        except UnicodeError as exc:  # text JSON can carry but UTF-8 cannot (lone surrogates)
            detail = f"{type(exc).__name__}: {exc}"
            records.append(self._deadletter(inbound, metadata, "unencodable", detail))
            outcome = DeadLettered("unencodable")
        except Exception as exc:  # a normalizer bug must never lose the body or 5xx
            log.exception("normalizer_failed", provider=inbound.provider)
            detail = f"{type(exc).__name__}: {exc}"
            records.append(self._deadletter(inbound, metadata, "normalizer_error", detail))
            outcome = DeadLettered("normalizer_error")
        else:
            accepted = Accepted([event.id for event in events])
            if live.dedupe_window > 0 and events:
                return await self._publish_deduplicated(records, events, encoded, accepted, live)
            for event_records in encoded:
                records.extend(event_records)
            await self._publish(records)
            self._count(events)
            return accepted
        await self._publish(records)
        return outcome

    def _check_sizes(self, encoded: list[list[Record]]) -> None:
        """A canonical record Kafka would refuse dead-letters the body (the raw copy stays)."""
        limit = self.max_record_bytes
        if limit is None:
            return
        for event_records in encoded:
            for record in event_records[:1]:  # every topic's copy has the same size
                size = len(record.value) + len(record.key or b"")
                size += sum(len(name) + len(value) for name, value in record.headers)
                if size > limit:
                    raise Unmappable(
                        "event_too_large",
                        f"a {size}-byte canonical event is over kafka.max_record_bytes ({limit})",
                    )

    async def _publish(self, records: list[Record]) -> None:
        started = time.perf_counter()
        if self.tracing is None:
            await self.bus.publish(records)
        else:
            await self.tracing.publish(self.bus, records)
        PUBLISH_SECONDS.observe(time.perf_counter() - started)

    async def _publish_deduplicated(
        self,
        records: list[Record],
        events: list[CloudEvent],
        encoded: list[list[Record]],
        outcome: Accepted,
        live: Live[Any],
    ) -> Accepted:
        claim = await self.dedupe.claim(outcome.ids, live)
        published = False
        try:
            seen: set[str] = set()
            fresh = []
            for event, event_records in zip(events, encoded, strict=True):
                # one event per id, also within a body
                if event.id not in claim.duplicates and event.id not in seen:
                    seen.add(event.id)
                    fresh.append(event)
                    records.extend(event_records)
            await self._publish(records)
            published = True
        finally:
            claim.finish(published=published)
        self._count(fresh)
        return outcome


def _normalize_traced(
    tracing: Tracing, inbound: Inbound, traceparent: str, tracestate: str | None
) -> list[CloudEvent]:
    """Normalize in a ``normalize`` span; each event carries the request's trace context
    (the CloudEvents distributed-tracing extension), which delivery continues."""
    events = tracing.normalize(PROVIDERS[inbound.provider].normalize, inbound)
    if not traceparent:
        return events
    return [
        msgspec.structs.replace(event, traceparent=traceparent, tracestate=tracestate)
        for event in events
    ]
