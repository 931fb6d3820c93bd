"""What delivery attempts leave behind: stored counts across restarts, counters, attempt-log
entries. A real state file and a real attempt log on the in-memory bus."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from relay.attempts import Attempt, AttemptLog, decode_attempt
from relay.bus.memory import MemoryBus
from relay.delivery.retry import AttemptFailed
from relay.delivery.sender import DeliveryResult
from relay.delivery.state import DeliveryState
from relay.delivery.tally import ATTEMPTS_KEPT_MS, Stats, Tally
from relay.units import now_ms
from tests.support import unique


def failure(status: int | None, error: str = "HTTP 503: busy") -> AttemptFailed:
    return AttemptFailed(status=status, error=error, retry_after=None, retryable=True)


def attempts_counted(subscriber: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "relay_delivery_attempts_total", {"subscriber": subscriber, "outcome": outcome}
    )
    return value or 0.0


async def logged(bus: MemoryBus, log: AttemptLog) -> list[Attempt]:
    await log.flush()
    return [decode_attempt(item.value) for item in bus.records("attempts")]


async def test_a_retried_attempt_is_stored_before_the_wait_and_forgotten_once_settled(
    tmp_path: Path,
) -> None:
    name = unique("crm")
    state = DeliveryState(tmp_path)
    stats = Stats()
    tally = Tally(name, 5, stats, state=state, attempt_log=None, replay=False)
    await tally.load()
    await tally.failed_attempt("e1", 1, failure(503), retry_in=0.5)
    await tally.failed_attempt("e1", 2, failure(None, "ClientConnectorError: refused"), 0.5)
    await tally.failed_attempt("e1", 3, failure(404, "HTTP 404"), retry_in=None)  # the last
    assert state.attempts(name) == {"e1": 2}  # the last attempt is not one to resume from
    assert stats.retried == 2 and tally.counted == {"e1"}  # to settle when it finishes
    assert [attempts_counted(name, o) for o in ("http_5xx", "error", "http_4xx")] == [1, 1, 1]

    restarted = Tally(name, 5, Stats(), state=state, attempt_log=None, replay=False)
    await restarted.load()
    assert restarted.prior == {"e1": 2} and restarted.counted == {"e1"}
    await restarted.settle("e1")
    assert state.attempts(name) == {} and restarted.counted == set()


async def test_counts_nobody_retried_for_a_week_are_forgotten_on_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = unique("crm")
    state = DeliveryState(tmp_path)
    week_ago = now_ms() - ATTEMPTS_KEPT_MS - 60_000
    with monkeypatch.context() as clock:  # the stale count was stored a week and a bit ago
        clock.setattr("relay.units.now_ms", lambda: week_ago)
        state.record_attempts(name, "stale", 3)
    state.record_attempts(name, "fresh", 2)
    tally = Tally(name, 5, Stats(), state=state, attempt_log=None, replay=False)
    await tally.load()
    assert tally.prior == {"fresh": 2}
    assert state.attempts(name) == {"fresh": 2}


async def test_without_state_nothing_is_stored_and_nothing_is_loaded() -> None:
    tally = Tally(unique("crm"), 5, Stats(), state=None, attempt_log=None, replay=False)
    await tally.load()
    await tally.failed_attempt("e1", 1, failure(503), retry_in=0.1)
    assert tally.prior == {} and tally.counted == set()


async def test_each_attempt_is_one_attempt_log_entry_with_its_outcome() -> None:
    bus = MemoryBus()
    await bus.start()
    log = AttemptLog(bus, "attempts")
    name = unique("crm")
    tally = Tally(name, 3, Stats(), state=None, attempt_log=log, replay=True)
    tally.log_attempt("e1", 1, 0.25, failure(503, "HTTP 503: busy"), retry_in=1.0)
    tally.log_attempt("e2", 3, 0.5, failure(None, "TimeoutError: slow"), retry_in=None)
    tally.log_attempt("e3", 1, 0.1, failure(410, "HTTP 410: gone"), retry_in=None)
    result = DeliveryResult(delivered=True, attempts=2, status=204)
    tally.log_delivered("e1", result, began=0.0)
    entries = await logged(bus, log)
    assert [(e.event_id, e.attempt, e.outcome) for e in entries] == [
        ("e1", 1, "retrying"),
        ("e2", 3, "deadlettered"),
        ("e3", 1, "disabled"),
        ("e1", 2, "delivered"),
    ]
    assert entries[0].duration_ms == 250.0 and entries[0].excerpt == "busy"
    assert entries[1].error == "TimeoutError" and entries[1].excerpt == "slow"
    assert entries[3].status == 204
    assert all(e.subscriber == name and e.replay for e in entries)
    assert [e.status for e in entries] == [503, None, 410, 204]
    assert [e.error for e in entries] == [None, "TimeoutError", None, None]


class FixedTime:
    """The monotonic clock at a fixed reading (what ``tally`` times attempts with)."""

    @staticmethod
    def monotonic() -> float:
        return 100.0123456


async def test_an_entry_is_stamped_in_epoch_ms_and_timed_to_the_microsecond(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("relay.delivery.tally.time", FixedTime)
    monkeypatch.setattr("relay.units.now_ms", lambda: 1_700_000_000_123)
    bus = MemoryBus()
    await bus.start()
    log = AttemptLog(bus, "attempts")
    tally = Tally(unique("crm"), 3, Stats(), state=None, attempt_log=log, replay=False)
    tally.log_attempt("e1", 1, 0.0123456, failure(503), retry_in=1.0)
    tally.log_delivered("e1", DeliveryResult(delivered=True, attempts=2, status=200), 99.5)
    entries = await logged(bus, log)
    assert [e.at_ms for e in entries] == [1_700_000_000_123] * 2
    assert [e.duration_ms for e in entries] == [12.346, 512.346]
    assert not any(e.replay for e in entries)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(None, "error"), (400, "http_4xx"), (499, "http_4xx"), (500, "http_5xx"), (503, "http_5xx")],
)
async def test_each_failed_attempt_is_counted_by_its_outcome(
    status: int | None, outcome: str
) -> None:
    name = unique("crm")
    tally = Tally(name, 5, Stats(), state=None, attempt_log=None, replay=False)
    await tally.failed_attempt("e1", 1, failure(status), retry_in=None)
    counted = {o: attempts_counted(name, o) for o in ("error", "http_4xx", "http_5xx")}
    assert counted == {o: 1 if o == outcome else 0 for o in counted}


def deliveries_counted(subscriber: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "relay_deliveries_total", {"subscriber": subscriber, "outcome": outcome}
    )
    return value or 0.0


async def test_a_retry_counts_as_retried_and_successes_reach_the_delivered_counter() -> None:
    name = unique("crm")
    tally = Tally(name, 5, Stats(), state=None, attempt_log=None, replay=False)
    await tally.failed_attempt("e1", 1, failure(503), retry_in=0.5)
    await tally.failed_attempt("e2", 1, failure(503), retry_in=None)  # not retried
    tally.counters["delivered"].inc(3)  # as the worker does once a commit interval
    assert deliveries_counted(name, "retried") == 1
    assert attempts_counted(name, "delivered") == 3


async def test_each_failed_attempt_is_one_log_line_with_what_an_operator_needs() -> None:
    name = unique("crm")
    tally = Tally(name, 5, Stats(), state=None, attempt_log=None, replay=False)
    long_error = "HTTP 503: " + "x" * 300
    with capture_logs() as logs:
        await tally.failed_attempt("e1", 2, failure(503, long_error), retry_in=0.1234567)
        await tally.failed_attempt("e2", 5, failure(None, "TimeoutError: slow"), retry_in=None)
    assert logs == [
        {
            "event": "delivery_attempt_failed",
            "log_level": "warning",
            "subscriber": name,
            "event_id": "e1",
            "attempt": 2,
            "max_attempts": 5,
            "status": 503,
            "error": long_error[:200],
            "retry_in": 0.123,
        },
        {
            "event": "delivery_attempt_failed",
            "log_level": "warning",
            "subscriber": name,
            "event_id": "e2",
            "attempt": 5,
            "max_attempts": 5,
            "status": None,
            "error": "TimeoutError: slow",
            "retry_in": None,
        },
    ]


async def test_settling_an_event_never_counted_leaves_the_state_alone(tmp_path: Path) -> None:
    """The hot path: a delivered event with no stored count costs no state write."""
    name = unique("crm")
    state = DeliveryState(tmp_path)
    tally = Tally(name, 5, Stats(), state=state, attempt_log=None, replay=False)
    await tally.load()
    state.record_attempts(name, "e1", 2)  # stored behind this tally's back
    await tally.settle("e1")
    assert state.attempts(name) == {"e1": 2}
