"""Pure delivery logic: classification, Retry-After, backoff, breaker, watermark, signing."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from email.utils import formatdate

import pytest
import standardwebhooks
from hypothesis import given
from hypothesis import strategies as st

from relay.config import webhook_secret
from relay.delivery.breaker import CircuitBreaker
from relay.delivery.retry import Backoff, classify, parse_retry_after
from relay.delivery.signing import headers, sign
from relay.delivery.watermark import Watermark
from relay.ratelimit import RateLimiter

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


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


@given(st.text(max_size=300), st.text(min_size=1, max_size=30), st.integers(0, 2**32))
def test_signature_matches_the_reference_library(
    body: str, message_id: str, timestamp: int
) -> None:
    signature = sign([webhook_secret(SECRET)], message_id, timestamp, body.encode())
    moment = datetime.fromtimestamp(timestamp, UTC)
    assert signature == standardwebhooks.Webhook(SECRET).sign(message_id, moment, body)


def test_rotation_sends_one_signature_per_secret() -> None:
    old, new = webhook_secret(SECRET), webhook_secret("whsec_" + "A" * 32)
    now = int(time.time())
    result = headers([old, new], "evt_1", now, b"{}")
    assert len(result["webhook-signature"].split(" ")) == 2
    for secret in (SECRET, "whsec_" + "A" * 32):
        standardwebhooks.Webhook(secret).verify(b"{}", result)
    assert "webhook-signature" not in headers([], "evt_1", now, b"{}")


def test_watermark_commits_only_below_the_lowest_unfinished() -> None:
    mark = Watermark()
    stream = ("t", 0)
    for offset in range(10, 15):
        mark.track(stream, offset)
    mark.finish(stream, 12)
    mark.finish(stream, 11)
    assert mark.take_commits() == {}  # 10 is still out
    mark.finish(stream, 10)
    assert mark.take_commits() == {stream: 13}
    assert mark.take_commits() == {}
    assert mark.take_commits(everything=True) == {stream: 13}
    mark.finish(stream, 14)
    assert mark.take_commits() == {}
    mark.finish(stream, 13)
    assert mark.take_commits() == {stream: 15}
    assert mark.outstanding == 0


def test_watermark_streams_are_independent() -> None:
    mark = Watermark()
    a, b = ("t", 0), ("t", 1)
    mark.track(a, 0)
    mark.track(b, 5)
    mark.finish(b, 5)
    assert mark.take_commits() == {b: 6}
    mark.forget(a)
    assert mark.outstanding == 0


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_breaker_opens_after_consecutive_failures_and_probes() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=3, cooldown=30.0, clock=clock)
    for _ in range(2):
        await breaker.acquire()
        breaker.record_failure()
    breaker.record_success()  # a success resets the count
    for _ in range(3):
        await breaker.acquire()
        breaker.record_failure()
    assert breaker.state == "open"

    waiting = asyncio.create_task(breaker.acquire())
    await asyncio.sleep(0.01)
    assert not waiting.done()  # open: nobody goes out
    clock.now += 31
    breaker._transition("open")  # wake the waiter so it re-reads the clock
    await asyncio.wait_for(waiting, 1)
    assert breaker.state == "half_open"  # that caller is the probe

    second = asyncio.create_task(breaker.acquire())
    await asyncio.sleep(0.01)
    assert not second.done()  # only one probe at a time
    breaker.record_success()
    await asyncio.wait_for(second, 1)
    assert breaker.state == "closed"


async def test_breaker_failed_probe_reopens() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, cooldown=5.0, clock=clock)
    breaker.record_failure()
    clock.now += 6
    await breaker.acquire()
    assert breaker.state == "half_open"
    breaker.record_failure()
    assert breaker.state == "open"


async def test_rate_limiter_spaces_attempts() -> None:
    limiter = RateLimiter(rate=50.0, burst=1.0)
    started = time.monotonic()
    for _ in range(6):
        await limiter.acquire()
    # five waits of 1/50 s after the first token: never faster than the rate allows
    assert time.monotonic() - started >= 5 / 50 * 0.9
