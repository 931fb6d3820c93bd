"""The waits between delivery attempts: Retry-After read against the right clock, backoff
by attempt number across restarts (tenacity's wait), full jitter, and watermarks that
forget a stream taken away."""

from __future__ import annotations

import random
import time
from email.utils import formatdate

import tenacity

from relay.delivery.retry import AttemptFailed, Backoff, parse_retry_after
from relay.delivery.watermark import Watermark


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


def test_a_forgotten_stream_commits_nothing_and_starts_over() -> None:
    mark = Watermark()
    taken, kept = ("events", 0, 1), ("events", 1, 1)
    for stream in (taken, kept):
        mark.track(stream, 10)
        mark.track(stream, 11)
        mark.finish(stream, 11)  # finished out of order: not committable yet
    mark.track(taken, 12)
    mark.track(taken, 13)
    mark.finish(taken, 10)  # taken: 10 and 11 committable, 12 pending
    mark.finish(taken, 13)  # 13 finished out of order
    mark.forget(taken)
    assert mark.position(taken) is None
    assert mark.take_commits() == {}
    assert mark.take_commits(everything=True) == {}
    # read again from 12 (same stream key, to show nothing of before is left)
    mark.track(taken, 12)
    mark.track(taken, 13)
    mark.finish(taken, 12)
    assert mark.take_commits() == {taken: 13}  # 13 not finished since: not past it
    assert mark.outstanding == 3  # kept: 10 and 11 (10 unfinished); taken: 13
