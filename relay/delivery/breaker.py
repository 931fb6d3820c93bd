"""A circuit breaker per subscriber that tells an endpoint that is down from one that is flaky.

It opens when the endpoint is failing as a whole, never on a short run of failures that
retries get through:

- **no success for** ``no_success_for`` seconds, with at least ``min_attempts`` failed
  attempts in that time (a dead endpoint: connection refused, timeouts, every answer 5xx);
- or a **failure rate** of at least ``failure_rate`` over the last ``window`` seconds, with at
  least ``min_attempts`` attempts in it, judged only once the breaker has watched the
  endpoint for a whole window (so a burst of first attempts failing together, each of which
  a retry will get through, cannot open it).

Open, it lets nothing through for ``cooldown`` seconds, then goes half-open: up to
``half_open_attempts`` probe attempts go out; the first to succeed closes it, one that
fails opens it again with the wait doubled (up to ``cooldown_max``). Only probes judge a
circuit that is not closed. A probe that never reports (its task was cancelled) frees its
place after a cooldown.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Literal

import msgspec
import structlog

State = Literal["closed", "open", "half_open"]
STATE_VALUES: dict[State, float] = {"closed": 0.0, "half_open": 1.0, "open": 2.0}
BUCKETS = 10

log = structlog.get_logger("relay.delivery")


class Rule(msgspec.Struct, frozen=True, kw_only=True):
    window: float = 30.0
    failure_rate: float = 0.9
    min_attempts: int = 10
    no_success_for: float = 15.0
    cooldown: float = 5.0
    cooldown_max: float = 300.0
    half_open_attempts: int = 3


class CircuitBreaker:
    def __init__(
        self,
        rule: Rule,
        *,
        name: str = "",
        clock: Callable[[], float] = time.monotonic,
        logger: Any = None,
    ) -> None:
        self.rule = rule
        self._clock = clock
        self._log = logger if logger is not None else log.bind(subscriber=name)
        self.state: State = "closed"
        # the window as BUCKETS buckets of [bucket number, attempts, failures]: O(1) memory
        self._width = rule.window / BUCKETS
        self._buckets: deque[list[int]] = deque()
        self._attempts_in_window = 0
        self._failures_in_window = 0
        self._watching_since = clock()
        self._failing_since: float | None = None
        self._failures_since_success = 0
        self._opened_at = 0.0
        self._wait = rule.cooldown
        self._probes: dict[int, float] = {}
        self._next_probe = 0
        self._changed = asyncio.Event()

    # --- state changes ----------------------------------------------------------------

    def _transition(self, state: State, **details: object) -> None:
        self.state = state
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        if state == "open":
            self._log.warning("circuit_opened", probe_in=round(self._wait, 3), **details)
        elif state == "half_open":
            self._log.info("circuit_half_open", probes=self.rule.half_open_attempts)
        else:
            self._log.info("circuit_closed", **details)

    def _open(self, **details: object) -> None:
        self._opened_at = self._clock()
        self._probes.clear()
        self._transition("open", **details)

    # --- the gate ---------------------------------------------------------------------

    async def acquire(self) -> int | None:
        """Wait until an attempt may go out. Returns a probe ticket when half-open."""
        while True:
            now = self._clock()
            if self.state == "closed":
                return None
            if self.state == "open" and now - self._opened_at >= self._wait:
                self._transition("half_open")
            if self.state == "half_open":
                # a probe that never reported frees its place after a cooldown
                for ticket, started in list(self._probes.items()):
                    if now - started >= self._wait:
                        del self._probes[ticket]
                if len(self._probes) < self.rule.half_open_attempts:
                    self._next_probe += 1
                    self._probes[self._next_probe] = now
                    return self._next_probe
                remaining = min(self._probes.values()) + self._wait - now
            else:
                remaining = self._opened_at + self._wait - now
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=max(remaining, 0.001))

    def release(self, ticket: int | None) -> None:
        """An attempt that went out ended without an answer worth judging (cancelled, say)."""
        if ticket is not None:
            self._probes.pop(ticket, None)

    # --- outcomes ---------------------------------------------------------------------

    def _sample(self, now: float, failed: int) -> None:
        number = int(now // self._width)
        buckets = self._buckets
        if buckets and buckets[-1][0] == number:
            bucket = buckets[-1]
            bucket[1] += 1
            bucket[2] += failed
        else:
            buckets.append([number, 1, failed])
            oldest = number - BUCKETS + 1
            while buckets[0][0] < oldest:
                _, attempts, failures = buckets.popleft()
                self._attempts_in_window -= attempts
                self._failures_in_window -= failures
        self._attempts_in_window += 1
        self._failures_in_window += failed

    def _clear_window(self, now: float) -> None:
        self._buckets.clear()
        self._attempts_in_window = 0
        self._failures_in_window = 0
        self._watching_since = now

    def record_success(self, ticket: int | None = None) -> None:
        now = self._clock()
        self._sample(now, 0)
        self._failing_since = None
        self._failures_since_success = 0
        # while open or half-open only probes judge: others were sent before it opened
        if self.state != "closed" and ticket is not None:
            self._probes.clear()
            self._wait = self.rule.cooldown
            self._clear_window(now)
            self._transition("closed", after=round(now - self._opened_at, 3))

    def record_failure(self, ticket: int | None = None) -> None:
        now = self._clock()
        if ticket is not None:
            self._probes.pop(ticket, None)
        self._sample(now, 1)
        self._failures_since_success += 1
        if self._failing_since is None:
            self._failing_since = now
        rule = self.rule
        if self.state == "half_open" and ticket is not None:  # only probes judge
            self._wait = min(self._wait * 2, rule.cooldown_max)
            self._open(reason="probe_failed")
            return
        if self.state != "closed":
            return
        if (
            now - self._failing_since >= rule.no_success_for
            and self._failures_since_success >= rule.min_attempts
        ):
            self._open(
                reason="no_success",
                failing_for=round(now - self._failing_since, 3),
                failures=self._failures_since_success,
            )
            return
        attempts = self._attempts_in_window
        if (
            attempts >= rule.min_attempts
            and now - self._watching_since >= rule.window
            and self._failures_in_window >= rule.failure_rate * attempts
        ):
            self._open(
                reason="failure_rate",
                failure_rate=round(self._failures_in_window / attempts, 3),
                attempts=attempts,
                window=rule.window,
            )
