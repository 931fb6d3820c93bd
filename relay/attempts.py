"""The attempt log: every delivery attempt, written off the hot path in batches.

A worker makes one cheap call per attempt (:meth:`AttemptLog.record`: a deque append); a
background task publishes what has gathered to the attempts topic (``topics.attempts``,
``relay.attempts`` by default, key = event id) every ``FLUSH_SECONDS``. An attempt never
waits for the log. The buffer is bounded: past ``max_buffered`` the oldest unwritten
attempts are dropped and counted (``relay_attempts_dropped``). A ``kill -9`` loses the
attempts not flushed yet (at most ``FLUSH_SECONDS`` of them); it never loses an event.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Literal

import msgspec
import structlog
from prometheus_client import Counter

from relay.bus import Bus, BusError, Record

log = structlog.get_logger("relay.attempts")

Outcome = Literal["delivered", "retrying", "deadlettered", "disabled"]
FLUSH_SECONDS = 0.25
MAX_BUFFERED = 100_000
EXCERPT_CHARS = 512
CONTENT_TYPE = b"application/vnd.relay.attempt+json"

DROPPED = Counter(
    "relay_attempts_dropped",
    "Attempt-log entries dropped because the bus could not take them fast enough",
)


class Attempt(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One delivery attempt, as written to the attempts topic (JSON)."""

    event_id: str
    subscriber: str
    attempt: int
    at_ms: int
    """When the attempt ended, epoch milliseconds."""
    duration_ms: float
    outcome: Outcome
    status: int | None = None
    error: str | None = None
    """The error class for attempts without an HTTP answer (``ClientConnectorError``)."""
    excerpt: str | None = None
    """The first ``EXCERPT_CHARS`` of the response body, or the error's message."""
    replay: bool = False
    """Made by a redrive or replay rather than by live delivery."""


_encoder = msgspec.json.Encoder()
decode_attempt = msgspec.json.Decoder(Attempt).decode


def describe_failure(status: int | None, error: str) -> tuple[str | None, str | None]:
    """(error class, excerpt) from a failed attempt's ``error`` text."""
    if status is not None:
        prefix = f"HTTP {status}"
        detail = error[len(prefix) :].lstrip(": ") if error.startswith(prefix) else error
        return None, detail[:EXCERPT_CHARS] or None
    name, _, message = error.partition(": ")
    return name[:100] or None, message[:EXCERPT_CHARS] or None


class AttemptLog:
    """The buffer and its flusher. ``record`` is safe to call before ``start``."""

    def __init__(self, bus: Bus, topic: str, *, max_buffered: int = MAX_BUFFERED) -> None:
        self.bus = bus
        self.topic = topic
        self._buffer: deque[Attempt] = deque()
        self._max = max_buffered
        self._task: asyncio.Task[None] | None = None
        self.written = 0

    def record(self, attempt: Attempt) -> None:
        """The hot path: append, nothing else."""
        buffer = self._buffer
        if len(buffer) >= self._max:
            buffer.popleft()
            DROPPED.inc()
        buffer.append(attempt)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="attempt-log")

    async def close(self, flush_within: float = 2.0) -> None:
        """Flush what is buffered (within ``flush_within`` seconds), then stop."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(TimeoutError, BusError):
            async with asyncio.timeout(flush_within):
                while self._buffer:
                    await self.flush()

    async def flush(self) -> int:
        """Publish what is buffered now as one bus write; put it back if the bus refuses."""
        if not self._buffer:
            return 0
        batch = list(self._buffer)
        self._buffer.clear()
        records = [
            Record(
                topic=self.topic,
                value=_encoder.encode(attempt),
                key=attempt.event_id.encode(),
                headers=(("content-type", CONTENT_TYPE),),
            )
            for attempt in batch
        ]
        try:
            await self.bus.publish(records)
        except BusError:
            room = self._max - len(self._buffer)
            kept = batch[-room:] if room > 0 else []
            if len(kept) < len(batch):
                DROPPED.inc(len(batch) - len(kept))
            self._buffer.extendleft(reversed(kept))
            raise
        self.written += len(batch)
        return len(batch)

    async def _run(self) -> None:
        delay = FLUSH_SECONDS
        while True:
            await asyncio.sleep(delay)
            try:
                await self.flush()
                delay = FLUSH_SECONDS
            except BusError as exc:
                delay = min(delay * 2, 10.0)
                log.warning("attempt_log_write_failed", error=str(exc), retry_in=delay)
