"""The circuit breaker's gate and its log lines (README, "Retries, dead letters, circuit
breaker"): what an operator sees, and that a waiting attempt goes out when it may."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from structlog.testing import capture_logs

from relay.delivery.breaker import BUCKETS, CircuitBreaker, Rule

RULE = Rule(
    window=10.0,
    failure_rate=0.5,
    min_attempts=2,
    no_success_for=5.0,
    cooldown=1.234375,  # exact in binary: the clock arithmetic below stays exact
    cooldown_max=4.0,
    half_open_attempts=1,
)


def with_(**changes: float) -> Rule:
    """``RULE`` with the fields named changed."""
    return msgspec.structs.replace(RULE, **changes)


FAST = with_(cooldown=0.0625)  # for waits in real time


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


@pytest.mark.parametrize("freed", ["released", "never_reported"])
async def test_a_probe_frees_its_place_when_released_or_a_cooldown_after_it_went_out(
    freed: str,
) -> None:
    clock = Clock()
    breaker = opened(clock)
    clock.now += RULE.cooldown
    first = await asyncio.wait_for(breaker.acquire(), 1)
    if freed == "released":
        breaker.release(first)  # cancelled before it was judged: free at once
    else:
        clock.now += RULE.cooldown  # never reported: free exactly one cooldown later
    second = await asyncio.wait_for(breaker.acquire(), 1)  # the one place is free again
    assert second is not None and second != first


@pytest.mark.parametrize(("successes", "failures", "state"), [(5, 5, "open"), (6, 4, "closed")])
async def test_closing_starts_a_new_window(successes: int, failures: int, state: str) -> None:
    """After a probe closes the circuit, the failure rate counts only what came after."""
    rule = with_(min_attempts=4, no_success_for=1000.0, cooldown=0.0625, cooldown_max=1.0)
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


# The opening rules: a window's failure rate, no success for a while, half-open probes.

WINDOWED = Rule(  # a 30 s window, 90 % failures over at least 10 attempts
    window=30.0,
    failure_rate=0.9,
    min_attempts=10,
    no_success_for=15.0,
    cooldown=5.0,
    cooldown_max=20.0,
    half_open_attempts=2,
)


class Lines:
    """Records what the breaker logs: (level, event, fields)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, object]]] = []

    def warning(self, event: str, **fields: object) -> None:
        self.lines.append(("warning", event, fields))

    def info(self, event: str, **fields: object) -> None:
        self.lines.append(("info", event, fields))


def opened_windowed(clock: Clock, logger: Lines | None = None) -> CircuitBreaker:
    """A ``WINDOWED`` breaker that opened on ``no_success`` (11 failures over 15 s)."""
    breaker = CircuitBreaker(WINDOWED, clock=clock, logger=logger)
    for _ in range(10):
        breaker.record_failure()
    clock.now += 15
    breaker.record_failure()
    return breaker


def test_a_burst_of_failures_that_retries_get_through_does_not_open() -> None:
    """16 first attempts and their second attempts fail at once, then the thirds succeed."""
    clock = Clock()
    breaker = CircuitBreaker(WINDOWED, clock=clock)
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
    breaker = CircuitBreaker(WINDOWED, clock=clock)
    for _ in range(30):
        breaker.record_failure()  # many, but all within a moment
    assert breaker.state == "closed"
    clock.now += 15
    breaker.record_failure()
    assert breaker.state == "open"


def test_no_success_needs_min_attempts() -> None:
    clock = Clock()
    breaker = CircuitBreaker(WINDOWED, clock=clock)
    for _ in range(5):  # one event backing off: a few attempts over a long time
        breaker.record_failure()
        clock.now += 10
    assert breaker.state == "closed"


def test_a_failure_rate_over_a_watched_window_opens() -> None:
    clock = Clock()
    breaker = CircuitBreaker(WINDOWED, clock=clock)
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
    breaker = opened_windowed(clock)
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
    breaker = opened_windowed(clock)
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
    breaker = opened_windowed(clock)
    clock.now += 5
    ticket = await breaker.acquire()
    breaker.record_failure()  # sent while closed, answered now
    assert breaker.state == "half_open"
    breaker.record_success(ticket)
    assert breaker.state == "closed"


async def test_the_breaker_says_when_it_opens_half_opens_and_closes() -> None:
    clock, lines = Clock(), Lines()
    breaker = opened_windowed(clock, lines)
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


# The window's arithmetic: ten buckets of a tenth of the window each.

# a 10 s window (buckets of one second); only the failure rate can open it here
BUCKETED = with_(failure_rate=0.7, no_success_for=1000.0, cooldown=1.0)


def test_an_attempt_counts_for_exactly_one_window() -> None:
    clock = Clock()  # 1000.0: the breaker watches from here
    breaker = CircuitBreaker(BUCKETED, clock=clock)
    clock.now = 1001.5
    for _ in range(4):
        breaker.record_success()  # bucket 1001
    clock.now = 1010.5  # bucket 1010: 1001 is the oldest bucket still in the window
    for _ in range(4):
        breaker.record_failure()
    assert breaker.state == "closed"  # 4 failures of 8 attempts: 50 % < 70 %
    clock.now = 1011.0  # bucket 1011: the four successes of bucket 1001 have left the window
    breaker.record_failure()
    assert breaker.state == "open"  # 5 of 5 (a bucket that forgot its count: 5 of 8)


def test_min_attempts_is_enough_attempts() -> None:
    clock = Clock()
    breaker = CircuitBreaker(BUCKETED, clock=clock)
    clock.now += BUCKETED.window
    breaker.record_failure()
    assert breaker.state == "closed"  # one attempt is below min_attempts (2)
    breaker.record_failure()
    assert breaker.state == "open"  # exactly min_attempts


async def test_a_stale_probe_reporting_late_is_harmless() -> None:
    clock = Clock()
    breaker = opened(clock, rule=msgspec.structs.replace(RULE, half_open_attempts=2))
    clock.now += RULE.cooldown
    stale = await asyncio.wait_for(breaker.acquire(), 1)
    other = await asyncio.wait_for(breaker.acquire(), 1)
    breaker.record_failure(other)  # opens again and forgets every probe
    assert breaker.state == "open"
    breaker.release(stale)  # the first probe's task ends late: no KeyError, no change
    breaker.record_failure(stale)
    assert breaker.state == "open"


def test_a_success_while_closed_changes_nothing_it_should_not() -> None:
    clock = Clock()
    breaker = CircuitBreaker(BUCKETED, clock=clock)
    clock.now += BUCKETED.window
    breaker.record_failure()
    with capture_logs() as logs:
        breaker.record_success(None)
        breaker.record_success(7)  # a ticket while closed (the circuit closed meanwhile)
    assert logs == []  # no "circuit_closed" for a circuit that was never open
    for _ in range(3):
        breaker.record_failure()
    assert breaker.state == "closed"  # 4 of 6 attempts failed: 67 % < 70 %
    breaker.record_failure()
    # the window kept every attempt and its watch: 5 of 7 attempts failed, 71 %
    assert breaker.state == "open"


def test_no_success_counts_failures_from_the_last_success_up_to_exactly_min_attempts() -> None:
    # a window of 1000 s: the failure-rate rule never judges here
    rule = with_(window=1000.0, failure_rate=1.0, min_attempts=3, cooldown=1.0)
    clock = Clock()
    breaker = CircuitBreaker(rule, clock=clock)
    breaker.record_failure()
    breaker.record_success()  # the count starts again from zero
    clock.now += 1
    breaker.record_failure()
    clock.now += 5
    breaker.record_failure()
    assert breaker.state == "closed"  # failing for 5 s, but 2 failures < min_attempts
    breaker.record_failure()
    assert breaker.state == "open"  # exactly min_attempts


def test_a_bucket_of_one_attempt_leaves_the_window_with_exactly_one() -> None:
    clock = Clock()
    breaker = CircuitBreaker(BUCKETED, clock=clock)
    clock.now = 1001.5
    breaker.record_success()  # bucket 1001: one attempt
    clock.now = 1010.5
    breaker.record_failure()
    assert breaker.state == "closed"  # 1 failure of 2 attempts: 50 % < 70 %
    clock.now = 1011.0  # bucket 1001 leaves: one attempt goes with it, not two
    breaker.record_failure()
    assert breaker.state == "open"  # 2 of 2 attempts (a bucket that left with two: 1 of 1)


def test_the_failure_rate_log_line_names_the_rate_the_attempts_and_the_window() -> None:
    clock = Clock()
    breaker = CircuitBreaker(BUCKETED, name="crm", clock=clock)
    clock.now += BUCKETED.window  # watched for a whole window
    for _ in range(2):
        breaker.record_success()
    with capture_logs() as logs:
        for _ in range(5):
            breaker.record_failure()
    assert breaker.state == "open"
    assert logs == [
        {
            "event": "circuit_opened",
            "log_level": "warning",
            "subscriber": "crm",
            "reason": "failure_rate",
            "failure_rate": 0.714,  # 5 of 7, to three places
            "attempts": 7,
            "window": 10.0,
            "probe_in": 1.0,
        }
    ]


def test_the_no_success_log_line_rounds_failing_for_to_milliseconds() -> None:
    clock = Clock()
    breaker = CircuitBreaker(RULE, name="crm", clock=clock)
    breaker.record_failure()
    breaker.record_failure()
    clock.now += 5.12345
    with capture_logs() as logs:
        breaker.record_failure()
    assert [(line["reason"], line["failing_for"]) for line in logs] == [("no_success", 5.123)]


def test_the_window_keeps_at_most_its_buckets_however_many_attempts_it_counts() -> None:
    """O(1) memory: a flood of attempts (a subscriber failing under load) is ten counters."""
    clock = Clock()
    breaker = CircuitBreaker(with_(min_attempts=10**9, no_success_for=10**9), clock=clock)
    for step in range(3000):
        clock.now = 1000.0 + step * 0.01  # 30 s of attempts, 100 a second
        if step % 3:
            breaker.record_failure()
        else:
            breaker.record_success()
    assert len(breaker._buckets) <= BUCKETS
    assert breaker._attempts_in_window == sum(bucket[1] for bucket in breaker._buckets)
