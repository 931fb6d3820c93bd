"""What to do after an attempt: classify answers, compute the wait before the next try."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import Literal

from tenacity import RetryCallState

Verdict = Literal["delivered", "retry", "reject"]


def classify(status: int, retry_4xx: bool) -> Verdict:
    """2xx delivered; 408, 429 and 5xx retried; other answers rejected (or retried)."""
    if 200 <= status < 300:
        return "delivered"
    if status in (408, 429) or status >= 500:
        return "retry"
    return "retry" if retry_4xx else "reject"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds, from delta-seconds or an HTTP date; None when absent/bad."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, moment.timestamp() - current)


class AttemptFailed(Exception):
    """One attempt did not deliver; tenacity decides whether to try again."""

    def __init__(
        self, *, status: int | None, error: str, retry_after: float | None, retryable: bool
    ) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.retry_after = retry_after
        self.retryable = retryable


class Backoff:
    """Exponential backoff with full jitter, and ``Retry-After`` when the server sent one."""

    def __init__(self, initial: float, maximum: float, jitter: bool) -> None:
        self.initial = initial
        self.maximum = maximum
        self.jitter = jitter

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.maximum)
        ceiling = min(self.maximum, self.initial * 2 ** (attempt - 1))
        return random.uniform(0, ceiling) if self.jitter else ceiling

    def __call__(self, state: RetryCallState) -> float:
        return self._wait(state, 0)

    def after(self, attempts_before: int) -> Callable[[RetryCallState], float]:
        """The wait for a tenacity loop that starts after ``attempts_before`` attempts."""
        return lambda state: self._wait(state, attempts_before)

    def _wait(self, state: RetryCallState, offset: int) -> float:
        failure = state.outcome.exception() if state.outcome is not None else None
        retry_after = failure.retry_after if isinstance(failure, AttemptFailed) else None
        return self.delay(state.attempt_number + offset, retry_after)
