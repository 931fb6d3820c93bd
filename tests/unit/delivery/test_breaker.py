"""The circuit breaker's gate and its log lines (README, "Retries, dead letters, circuit
breaker"): what an operator sees, and that a waiting attempt goes out when it may."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from structlog.testing import capture_logs

from relay.delivery.breaker import CircuitBreaker, Rule

RULE = Rule(
    window=10.0,
    failure_rate=0.5,
    min_attempts=2,
    no_success_for=5.0,
    cooldown=1.234375,  # exact in binary: the clock arithmetic below stays exact
    cooldown_max=4.0,
    half_open_attempts=1,
)


FAST = msgspec.structs.replace(RULE, cooldown=0.0625)  # for waits in real time


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def opened(clock: Clock, name: str = "crm", rule: Rule = RULE) -> CircuitBreaker:
    """A breaker that opened on ``no_success`` (three failures over five seconds)."""
    breaker = CircuitBreaker(rule, name=name, clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    clock.now += 5
    breaker.record_failure()
    assert breaker.state == "open"
    return breaker


async def test_the_documented_log_lines_open_half_open_closed() -> None:
    clock = Clock()
    with capture_logs() as logs:
        breaker = opened(clock)
        clock.now += RULE.cooldown
        probe = await asyncio.wait_for(breaker.acquire(), 1)
        breaker.record_failure(probe)  # the probe fails: open again, the wait doubled
        clock.now += 2 * RULE.cooldown
        probe = await asyncio.wait_for(breaker.acquire(), 1)
        clock.now += 0.5
        breaker.record_success(probe)
    lines = [{k: v for k, v in line.items() if k != "log_level"} for line in logs]
    assert lines == [
        {
            "event": "circuit_opened",
            "subscriber": "crm",
            "reason": "no_success",
            "failing_for": 5.0,
            "failures": 3,
            "probe_in": 1.234,
        },
        {"event": "circuit_half_open", "subscriber": "crm", "probes": 1},
        {
            "event": "circuit_opened",
            "subscriber": "crm",
            "reason": "probe_failed",
            "probe_in": 2.469,
        },
        {"event": "circuit_half_open", "subscriber": "crm", "probes": 1},
        {
            "event": "circuit_closed",
            "subscriber": "crm",
            "after": round(2 * RULE.cooldown + 0.5, 3),
        },
    ]
    assert [line["log_level"] for line in logs] == ["warning", "info", "warning", "info", "info"]


async def test_an_attempt_waiting_on_an_open_circuit_goes_out_once_the_cooldown_passed() -> None:
    clock = Clock()
    breaker = opened(clock, rule=FAST)
    waiting = asyncio.create_task(breaker.acquire())
    await asyncio.sleep(0.01)
    assert not waiting.done()  # open: nothing goes out
    clock.now += FAST.cooldown  # the gate re-checks after the cooldown (in real time too)
    assert await asyncio.wait_for(waiting, 5) is not None  # a probe ticket
    assert breaker.state == "half_open"


async def test_an_attempt_waiting_for_a_probe_place_gets_it_when_the_probe_goes_stale() -> None:
    clock = Clock()
    breaker = opened(clock, rule=FAST)
    clock.now += FAST.cooldown
    first = await asyncio.wait_for(breaker.acquire(), 1)  # the only probe place
    waiting = asyncio.create_task(breaker.acquire())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    clock.now += FAST.cooldown  # the first probe never reported
    second = await asyncio.wait_for(waiting, 5)
    assert second is not None and second != first


async def test_a_released_probe_frees_its_place_at_once() -> None:
    clock = Clock()
    breaker = opened(clock)
    clock.now += RULE.cooldown
    first = await asyncio.wait_for(breaker.acquire(), 1)
    breaker.release(first)  # cancelled before it was judged
    second = await asyncio.wait_for(breaker.acquire(), 1)  # the one place is free again
    assert second is not None and second != first


async def test_a_probe_that_never_reports_frees_its_place_after_a_cooldown() -> None:
    clock = Clock()
    breaker = opened(clock)
    clock.now += RULE.cooldown
    first = await asyncio.wait_for(breaker.acquire(), 1)
    clock.now += RULE.cooldown  # exactly one cooldown later
    second = await asyncio.wait_for(breaker.acquire(), 1)
    assert second is not None and second != first


@pytest.mark.parametrize(("successes", "failures", "state"), [(5, 5, "open"), (6, 4, "closed")])
async def test_closing_starts_a_new_window(successes: int, failures: int, state: str) -> None:
    """After a probe closes the circuit, the failure rate counts only what came after."""
    rule = Rule(
        window=10.0,
        failure_rate=0.5,
        min_attempts=4,
        no_success_for=1000.0,
        cooldown=0.0625,
        cooldown_max=1.0,
        half_open_attempts=1,
    )
    clock = Clock()
    breaker = CircuitBreaker(rule, clock=clock)
    clock.now += rule.window
    for _ in range(4):
        breaker.record_failure()
    assert breaker.state == "open"  # 4 of 4 failed over a watched window
    clock.now += rule.cooldown
    breaker.record_success(await asyncio.wait_for(breaker.acquire(), 1))
    assert str(breaker.state) == "closed"  # (str: mypy keeps the narrowing to "open")
    clock.now += rule.window + 1  # a whole new window watched
    for _ in range(successes):
        breaker.record_success()
    for _ in range(failures):
        breaker.record_failure()
    assert breaker.state == state  # 5 of 10 is the rate; 4 of 10 is not
