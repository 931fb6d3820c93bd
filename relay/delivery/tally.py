"""What one subscriber's delivery attempts leave behind: counts, log lines, attempt-log entries.

Every failed attempt is one log line and one count. One that will be retried has its
attempt number stored (``DeliveryState``) before the wait, so a restart resumes the count
rather than starting over; an event that settles (delivered or dead-lettered) has it
forgotten. With an attempt log, every attempt is also one ``Attempt`` entry.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import KW_ONLY, dataclass, field

import msgspec
import structlog

from relay import units
from relay.attempts import Attempt, AttemptLog, describe_failure
from relay.attempts import Outcome as AttemptOutcome
from relay.delivery.retry import AttemptFailed
from relay.delivery.sender import DeliveryResult
from relay.delivery.state import DeliveryState
from relay.metrics import DELIVERIES, DELIVERY_ATTEMPTS

ATTEMPTS_KEPT_MS = 7 * 86_400_000
"""Stored attempt counts of events nobody retried for this long are forgotten."""


class Stats(msgspec.Struct, kw_only=True):
    delivered: int = 0
    retried: int = 0
    deadlettered: int = 0
    skipped: int = 0


def _attempt_outcome(failure: AttemptFailed) -> str:
    if failure.status is None:
        return "error"
    return "http_4xx" if failure.status < 500 else "http_5xx"


@dataclass
class Tally:
    """``prior`` and ``counted`` are read by the worker's hot path (both empty without state)."""

    subscriber: str
    max_attempts: int
    stats: Stats
    _: KW_ONLY
    state: DeliveryState | None
    attempt_log: AttemptLog | None
    replay: bool
    prior: dict[str, int] = field(default_factory=dict, init=False)
    """Attempts made before this run, for events still being retried."""
    counted: set[str] = field(default_factory=set, init=False)
    """Events whose attempt count is stored (removed once they settle)."""

    def __post_init__(self) -> None:
        self._log = structlog.get_logger("relay.delivery").bind(subscriber=self.subscriber)
        self._retried = DELIVERIES.labels(self.subscriber, "retried")
        self.counters = {
            outcome: DELIVERY_ATTEMPTS.labels(self.subscriber, outcome)
            for outcome in ("delivered", "http_4xx", "http_5xx", "error")
        }

    async def load(self) -> None:
        """Read the stored counts (forgetting stale ones) once, before the first delivery."""
        if self.state is not None:
            self.prior = await asyncio.to_thread(self._load_attempts, self.state)
            self.counted = set(self.prior)

    def _load_attempts(self, state: DeliveryState) -> dict[str, int]:
        state.forget_attempts_before(units.now_ms() - ATTEMPTS_KEPT_MS)
        return state.attempts(self.subscriber)

    def log_delivered(self, event_id: str, result: DeliveryResult, began: float) -> None:
        """The attempt-log entry of the attempt that delivered (there must be a log)."""
        assert self.attempt_log is not None
        self.attempt_log.record(
            Attempt(
                event_id=event_id,
                subscriber=self.subscriber,
                attempt=result.attempts,
                at_ms=units.now_ms(),
                duration_ms=round((time.monotonic() - began) * 1000, 3),
                outcome="delivered",
                status=result.status,
                replay=self.replay,
            )
        )

    def log_attempt(
        self,
        event_id: str,
        attempt: int,
        seconds: float,
        failure: AttemptFailed,
        retry_in: float | None,
    ) -> None:
        """One attempt-log entry for a failed attempt (the duration includes slot waits)."""
        assert self.attempt_log is not None
        error, excerpt = describe_failure(failure.status, failure.error)
        outcome: AttemptOutcome
        if retry_in is not None:
            outcome = "retrying"
        else:
            outcome = "disabled" if failure.status == 410 else "deadlettered"
        self.attempt_log.record(
            Attempt(
                event_id=event_id,
                subscriber=self.subscriber,
                attempt=attempt,
                at_ms=units.now_ms(),
                duration_ms=round(seconds * 1000, 3),
                outcome=outcome,
                status=failure.status,
                error=error,
                excerpt=excerpt,
                replay=self.replay,
            )
        )

    async def failed_attempt(
        self, event_id: str, attempt: int, failure: AttemptFailed, retry_in: float | None
    ) -> None:
        """One line and one count per failed attempt; the count is stored before the wait."""
        self.counters[_attempt_outcome(failure)].inc()
        self._log.warning(
            "delivery_attempt_failed",
            event_id=event_id,
            attempt=attempt,
            max_attempts=self.max_attempts,
            status=failure.status,
            error=failure.error[:200],
            retry_in=None if retry_in is None else round(retry_in, 3),
        )
        if retry_in is None:
            return
        self.stats.retried += 1
        self._retried.inc()
        if self.state is not None:
            self.counted.add(event_id)
            await asyncio.to_thread(self.state.record_attempts, self.subscriber, event_id, attempt)

    async def settle(self, event_id: str) -> None:
        if event_id in self.counted and self.state is not None:
            self.counted.discard(event_id)
            await asyncio.to_thread(self.state.settle, self.subscriber, event_id)
