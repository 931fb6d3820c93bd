"""The dead-letter record: what relay writes when a body or an event cannot go on, and how
its readers (tail, replay, the index, the admin side) tell why.

Both origins share ``topics.deadletter``:

- **ingest**: a body that made no event. Value: the raw body; key: the source; headers: the
  raw copy's (``relay-source``, ``relay-provider``, ...) plus ``relay-reason`` and
  ``relay-error``.
- **delivery**: an event a subscriber refused, whose retries ran out, or whose delivery
  crashed. Value: the structured CloudEvent; key: its partitionkey; headers: the reason,
  the subscriber, the event id, the attempts, the last status and error, where it was read.

``relay-error`` is cut at :data:`MAX_ERROR_BYTES`. A delivery dead letter is told from an
ingest one by its ``relay-subscriber`` header.

The reason vocabulary is typed: a reason the code writes is one of these Literals (mypy
refuses any other), and the AsyncAPI document lists exactly these (relay.contracts).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Literal, get_args

import msgspec
import structlog

from relay.bus.base import Bus, BusError, Headers, Item, Record
from relay.cloudevents import RECORD_CONTENT_TYPE

log = structlog.get_logger("relay.delivery")

IngestReason = Literal[
    "malformed_json",
    "not_an_object",
    "missing_event",
    "unknown_event",
    "unknown_kind",
    "unknown_type",
    "unmappable",
    "normalizer_error",
    "too_many_events",
    "event_too_large",
    "unencodable",
]
"""A webhook body that made no canonical event (the raw body is the dead letter)."""

DeliveryFailure = Literal["rejected", "exhausted", "gone", "crashed"]
"""Why a delivery did not happen: ``rejected`` (a 4xx), ``exhausted`` (retries ran out),
``gone`` (410: the subscriber is disabled), ``crashed`` (a bug in the worker)."""

INGEST_REASONS: tuple[str, ...] = get_args(IngestReason)
DELIVERY_REASONS: tuple[str, ...] = tuple(
    f"delivery_{failure}" for failure in get_args(DeliveryFailure) if failure != "gone"
)
"""A delivery dead letter's ``relay-reason``, ``delivery_<failure>``: not ``gone``, whose
event is not dead-lettered but waits for the subscriber to be enabled again."""

Origin = Literal["ingest", "delivery"]

REASON = "relay-reason"
ERROR = "relay-error"
SUBSCRIBER = "relay-subscriber"
MAX_ERROR_BYTES = 1024


def error_bytes(detail: str) -> bytes:
    """``relay-error``'s value: UTF-8, cut at :data:`MAX_ERROR_BYTES`."""
    return detail.encode("utf-8", "replace")[:MAX_ERROR_BYTES]


def ingest_record(
    topic: str,
    body: bytes,
    key: bytes,
    metadata: Sequence[tuple[str, bytes]],
    reason: str,
    detail: str,
) -> Record:
    """A body that made no event, with the raw copy's ``metadata`` headers."""
    headers = (*metadata, (REASON, reason.encode()), (ERROR, error_bytes(detail)))
    return Record(topic=topic, value=body, key=key, headers=headers)


def delivery_record(
    topic: str,
    subscriber: str,
    item: Item,
    event_id: str,
    *,
    reason: str,
    attempts: int,
    status: int | None,
    error: str | None,
    value: bytes | None = None,
) -> Record:
    """An event not delivered to ``subscriber``, read as ``item``.

    ``value``: the structured CloudEvent when the record read was not one already.
    """
    headers = (
        (REASON, reason.encode()),
        (SUBSCRIBER, subscriber.encode()),
        ("relay-event-id", event_id.encode()),
        ("relay-attempts", str(attempts).encode()),
        ("relay-last-status", str(status or "").encode()),
        (ERROR, error_bytes(error or "")),
        ("relay-original-topic", item.topic.encode()),
        ("relay-original-offset", str(item.offset).encode()),
        ("content-type", RECORD_CONTENT_TYPE),
    )
    return Record(
        topic=topic, value=item.value if value is None else value, key=item.key, headers=headers
    )


class Described(msgspec.Struct, frozen=True, kw_only=True):
    """A dead letter's why, read back from its headers."""

    origin: Origin
    reason: str | None = None
    error: str | None = None
    subscriber: str | None = None
    event_id: str | None = None
    source: str | None = None
    attempts: int | None = None
    last_status: int | None = None


def _text(value: bytes | None) -> str | None:
    return value.decode("utf-8", "replace") if value else None


def _int(value: bytes | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def origin(headers: Mapping[str, object]) -> Origin:
    """Who dead-lettered a record: delivery records name their subscriber, ingest's do not."""
    return "delivery" if SUBSCRIBER in headers else "ingest"


def describe(headers: Mapping[str, bytes]) -> Described:
    """Why a record is on the dead-letter topic, as far as its headers say."""
    return Described(
        origin=origin(headers),
        reason=_text(headers.get(REASON)),
        error=_text(headers.get(ERROR)),
        subscriber=_text(headers.get(SUBSCRIBER)),
        event_id=_text(headers.get("relay-event-id")),
        source=_text(headers.get("relay-source")),
        attempts=_int(headers.get("relay-attempts")),
        last_status=_int(headers.get("relay-last-status")),
    )


def made_for(headers: Headers, subscriber: bytes) -> bool:
    """Whether a dead letter came of a delivery to ``subscriber`` (its name as bytes)."""
    return dict(headers).get(SUBSCRIBER) == subscriber


class DeadLetters:
    """Failed deliveries go to the dead-letter topic; the subscriber then moves on."""

    def __init__(self, bus: Bus, topic: str) -> None:
        self.bus = bus
        self.topic = topic

    async def publish(self, record: Record) -> None:
        """Keep trying: a dead letter that is not written must not be committed past."""
        delay = 0.5
        while True:
            try:
                await self.bus.publish([record])
                return
            except BusError as exc:
                log.warning("deadletter_write_failed", error=str(exc), retry_in=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
