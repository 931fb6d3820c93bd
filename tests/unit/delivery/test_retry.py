"""What an answer means (delivered, retried, rejected) and the waits between attempts:
Retry-After read against the right clock, backoff by attempt number across restarts
(tenacity's wait), full jitter."""

from __future__ import annotations

import random
import time
from email.utils import formatdate

import pytest
import tenacity

from relay.delivery.retry import AttemptFailed, Backoff, classify, parse_retry_after


def test_a_retry_after_date_is_read_against_the_given_clock_or_now() -> None:
    then = 1_000_000_000.0  # far from today: a date read against the wrong clock is way off
    assert parse_retry_after(formatdate(then + 90, usegmt=True), now=then) == 90.0
    from_now = parse_retry_after(formatdate(time.time() + 90, usegmt=True))
    assert from_now is not None and 85 <= from_now <= 90


def state(attempt: int, failure: BaseException | None) -> tenacity.RetryCallState:
    call = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
    call.attempt_number = attempt
    if failure is not None:
        try:
            raise failure
        except BaseException as exc:
            call.set_exception((type(exc), exc, exc.__traceback__))
    return call


def failed(retry_after: float | None) -> AttemptFailed:
    return AttemptFailed(status=503, error="HTTP 503", retry_after=retry_after, retryable=True)


def test_the_wait_counts_the_attempts_made_before_a_restart() -> None:
    backoff = Backoff(initial=1.0, maximum=100.0, jitter=False)
    wait = backoff.after(attempts_before=3)  # attempts 1-3 were made by an earlier process
    assert wait(state(1, failed(None))) == 8.0  # this is attempt 4: 1 * 2 ** 3
    assert wait(state(2, failed(None))) == 16.0
    assert backoff(state(2, failed(None))) == 2.0  # no attempts before: attempt 2


def test_the_wait_honours_the_last_answers_retry_after() -> None:
    backoff = Backoff(initial=1.0, maximum=100.0, jitter=False)
    assert backoff.after(attempts_before=3)(state(2, failed(7.0))) == 7.0
    assert backoff(state(1, failed(250.0))) == 100.0  # bounded by retry.max
    assert backoff(state(3, ConnectionError("refused"))) == 4.0  # not an answer: backoff
    assert backoff(state(3, None)) == 4.0


def test_jitter_spreads_the_whole_range_below_the_ceiling() -> None:
    random.seed(18)
    backoff = Backoff(initial=0.5, maximum=10.0, jitter=True)
    waits = [backoff.delay(1, None) for _ in range(200)]
    assert all(0 <= w <= 0.5 for w in waits)
    assert min(waits) < 0.1 and max(waits) > 0.4  # full jitter: from zero to the ceiling


@pytest.mark.parametrize(
    ("status", "retry_4xx", "verdict"),
    [
        (200, False, "delivered"),
        (204, False, "delivered"),
        (301, False, "reject"),
        (400, False, "reject"),
        (401, False, "reject"),
        (404, True, "retry"),
        (408, False, "retry"),
        (429, False, "retry"),
        (500, False, "retry"),
        (503, False, "retry"),
    ],
)
def test_classify(status: int, retry_4xx: bool, verdict: str) -> None:
    assert classify(status, retry_4xx) == verdict


def test_retry_after_seconds_and_http_date() -> None:
    now = time.time()
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 3 ") == 3.0
    in_a_minute = parse_retry_after(formatdate(now + 60, usegmt=True), now=now)
    assert in_a_minute is not None and 59 <= in_a_minute <= 61
    assert parse_retry_after(formatdate(now - 60, usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("-5") is None


def test_backoff_is_exponential_capped_and_jittered() -> None:
    fixed = Backoff(initial=1.0, maximum=10.0, jitter=False)
    assert [fixed.delay(n, None) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert fixed.delay(1, 30.0) == 10.0  # Retry-After honoured, within the maximum
    assert fixed.delay(3, 0.5) == 0.5
    jittered = Backoff(initial=1.0, maximum=10.0, jitter=True)
    for attempt in range(1, 8):
        assert 0 <= jittered.delay(attempt, None) <= min(10.0, 2 ** (attempt - 1))
