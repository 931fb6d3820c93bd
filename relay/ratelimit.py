"""Token bucket: at most ``rate`` actions per second, small bursts allowed."""

from __future__ import annotations

import asyncio
import time


class RateLimiter:
    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate)
        self._tokens = self.capacity
        self._updated = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def try_acquire(self) -> float:
        """Take a token now and return 0, or return the seconds until one is available."""
        self._refill()
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate

    async def acquire(self) -> None:
        wait = self.try_acquire()
        while wait > 0:
            await asyncio.sleep(wait)
            wait = self.try_acquire()
