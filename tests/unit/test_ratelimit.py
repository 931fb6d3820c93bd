"""The token bucket behind ``rate_limit`` (sources at the ingress, subscribers in delivery)."""

from __future__ import annotations

import asyncio
import time

from relay.ratelimit import RateLimiter


def test_the_burst_is_one_second_of_the_rate() -> None:
    limiter = RateLimiter(rate=5.0)
    assert [limiter.try_acquire() == 0 for _ in range(6)] == [True] * 5 + [False]


def test_a_slow_rate_still_lets_one_through_and_no_more() -> None:
    limiter = RateLimiter(rate=0.5)  # one every two seconds: a burst of one, not of two
    assert limiter.try_acquire() == 0
    assert limiter.try_acquire() > 1.9  # the next token is about 2 s away


async def test_the_wait_is_what_the_missing_part_of_a_token_takes() -> None:
    limiter = RateLimiter(rate=2.0, burst=1.0)
    assert limiter.try_acquire() == 0
    await asyncio.sleep(0.25)  # half a token refills (more on a slow machine, never less)
    wait = limiter.try_acquire()
    # (1 - tokens) / rate: at most 0.25 s now; a wait counted from a whole token is >= 0.5 s
    assert 0 <= wait <= 0.25


async def test_rate_limiter_spaces_attempts() -> None:
    limiter = RateLimiter(rate=50.0, burst=1.0)
    started = time.monotonic()
    for _ in range(6):
        await limiter.acquire()
    # five waits of 1/50 s after the first token: never faster than the rate allows
    assert time.monotonic() - started >= 5 / 50 * 0.9
