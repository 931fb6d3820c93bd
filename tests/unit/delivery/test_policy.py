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
from relay.delivery.breaker import CircuitBreaker, Rule
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


RULE = Rule(
    window=30.0,
    failure_rate=0.9,
    min_attempts=10,
    no_success_for=15.0,
    cooldown=5.0,
    cooldown_max=20.0,
    half_open_attempts=2,
)


def test_a_burst_of_failures_that_retries_get_through_does_not_open() -> None:
    """16 first attempts and their second attempts fail at once, then the thirds succeed."""
    clock = Clock()
    breaker = CircuitBreaker(RULE, clock=clock)
    for _ in range(32):
        breaker.record_failure()
    assert breaker.state == "closed"
    for _round in range(40):  # then two in three fail, for minutes
        clock.now += 1
        breaker.record_failure()
        breaker.record_failure()
        breaker.record_success()
    assert breaker.state == "closed"


def test_no_success_for_a_while_opens() -> None:
    clock = Clock()
    breaker = CircuitBreaker(RULE, clock=clock)
    for _ in range(30):
        breaker.record_failure()  # many, but all within a moment
    assert breaker.state == "closed"
    clock.now += 15
    breaker.record_failure()
    assert breaker.state == "open"


def test_no_success_needs_min_attempts() -> None:
    clock = Clock()
    breaker = CircuitBreaker(RULE, clock=clock)
    for _ in range(5):  # one event backing off: a few attempts over a long time
        breaker.record_failure()
        clock.now += 10
    assert breaker.state == "closed"


def test_a_failure_rate_over_a_watched_window_opens() -> None:
    clock = Clock()
    breaker = CircuitBreaker(RULE, clock=clock)
    for _ in range(31):  # a healthy half minute
        breaker.record_success()
        clock.now += 1
    for _ in range(30):  # then one success in twenty: never 15 s without one
        for _ in range(19):
            breaker.record_failure()
        breaker.record_success()
        clock.now += 0.5
        if breaker.state == "open":
            break
    assert breaker.state == "open"


async def test_half_open_lets_a_few_probes_and_a_success_closes() -> None:
    clock = Clock()
    breaker = CircuitBreaker(RULE, clock=clock)
    for _ in range(10):
        breaker.record_failure()
    clock.now += 15
    breaker.record_failure()
    assert breaker.state == "open"
    waiting = asyncio.create_task(breaker.acquire())
    await asyncio.sleep(0.01)
    assert not waiting.done()  # open: nobody goes out
    clock.now += 5
    breaker._transition("open")  # wake the waiter so it re-reads the clock
    first = await asyncio.wait_for(waiting, 1)
    assert breaker.state == "half_open" and first is not None
    second = await asyncio.wait_for(breaker.acquire(), 1)
    third = asyncio.create_task(breaker.acquire())
    await asyncio.sleep(0.01)
    assert not third.done()  # half_open_attempts = 2
    breaker.record_success(second)
    assert breaker.state == "closed"
    assert await asyncio.wait_for(third, 1) is None


async def test_failed_probes_back_off_up_to_the_max() -> None:
    clock = Clock()
    breaker = CircuitBreaker(RULE, clock=clock)
    for _ in range(10):
        breaker.record_failure()
    clock.now += 15
    breaker.record_failure()
    waits = []
    for _ in range(4):
        opened = clock.now
        clock.now += 100
        ticket = await breaker.acquire()
        assert breaker.state == "half_open"
        breaker.record_failure(ticket)
        assert breaker.state == "open"
        waits.append(breaker._wait)
        clock.now = opened + 100
    assert waits == [10.0, 20.0, 20.0, 20.0]


async def test_a_late_failure_of_a_non_probe_does_not_reopen_half_open() -> None:
    clock = Clock()
    breaker = CircuitBreaker(RULE, clock=clock)
    for _ in range(10):
        breaker.record_failure()
    clock.now += 15
    breaker.record_failure()
    clock.now += 5
    ticket = await breaker.acquire()
    breaker.record_failure()  # sent while closed, answered now
    assert breaker.state == "half_open"
    breaker.record_success(ticket)
    assert breaker.state == "closed"


async def test_rate_limiter_spaces_attempts() -> None:
    limiter = RateLimiter(rate=50.0, burst=1.0)
    started = time.monotonic()
    for _ in range(6):
        await limiter.acquire()
    # five waits of 1/50 s after the first token: never faster than the rate allows
    assert time.monotonic() - started >= 5 / 50 * 0.9


class Lines:
    """Records what the breaker logs: (level, event, fields)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, object]]] = []

    def warning(self, event: str, **fields: object) -> None:
        self.lines.append(("warning", event, fields))

    def info(self, event: str, **fields: object) -> None:
        self.lines.append(("info", event, fields))


async def test_the_breaker_says_when_it_opens_half_opens_and_closes() -> None:
    clock, lines = Clock(), Lines()
    breaker = CircuitBreaker(RULE, clock=clock, logger=lines)
    for _ in range(10):
        breaker.record_failure()
    clock.now += 15
    breaker.record_failure()
    clock.now += 5
    ticket = await breaker.acquire()
    breaker.record_failure(ticket)
    clock.now += 10
    ticket = await breaker.acquire()
    breaker.record_success(ticket)
    events = [(level, event) for level, event, _ in lines.lines]
    assert events == [
        ("warning", "circuit_opened"),
        ("info", "circuit_half_open"),
        ("warning", "circuit_opened"),
        ("info", "circuit_half_open"),
        ("info", "circuit_closed"),
    ]
    first, again = lines.lines[0][2], lines.lines[2][2]
    assert first["reason"] == "no_success" and first["failures"] == 11
    assert first["probe_in"] == 5.0
    assert again["reason"] == "probe_failed" and again["probe_in"] == 10.0
