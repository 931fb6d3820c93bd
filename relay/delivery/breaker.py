"""A circuit breaker per subscriber: stop hammering an endpoint that is down, then probe it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(
        self, failures: int, cooldown: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = failures
        self.cooldown = cooldown
        self._clock = clock
        self.state: State = "closed"
        self._consecutive = 0
        self._opened_at = 0.0
        self._probe_started_at = 0.0
        self._changed = asyncio.Event()

    def _transition(self, state: State) -> None:
        self.state = state
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def acquire(self) -> None:
        """Wait until an attempt may go out: at once when closed; one probe after cooldown.

        A probe that never reports (its task was cancelled) is replaced after a cooldown.
        """
        while True:
            if self.state == "closed":
                return
            changed = self._changed
            since = self._opened_at if self.state == "open" else self._probe_started_at
            remaining = since + self.cooldown - self._clock()
            if remaining <= 0:
                self._probe_started_at = self._clock()
                if self.state == "open":
                    self._transition("half_open")
                return  # this caller is the probe
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout=remaining)

    def record_success(self) -> None:
        self._consecutive = 0
        if self.state != "closed":
            self._transition("closed")

    def record_failure(self) -> None:
        self._consecutive += 1
        if self.state == "half_open" or (
            self.state == "closed" and self._consecutive >= self.threshold
        ):
            self._opened_at = self._clock()
            self._transition("open")
