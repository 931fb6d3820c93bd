"""The delivery state file: anchors that never move, attempt counts, disabled subscribers."""

from __future__ import annotations

import time
from pathlib import Path

from relay.config import Subscriber, parse
from relay.delivery.state import DeliveryState, fingerprint, read_only_disabled
from tests.support import assert_durable


def subscriber(extra: str = "") -> Subscriber:
    config = parse(f"subscribers: [{{name: crm, url: 'http://127.0.0.1:9/x'{extra}}}]", env={})
    return config.subscribers[0]


def test_an_anchor_is_set_once(tmp_path: Path) -> None:
    state = DeliveryState(tmp_path)
    assert state.anchored("crm") is None
    first = state.anchor("crm", at_ms=1_000)
    assert state.anchor("crm", at_ms=2_000) == first == 1_000
    state.close()
    assert DeliveryState(tmp_path).anchor("crm") == 1_000  # a restart does not move it


def test_attempt_counts_are_kept_until_settled(tmp_path: Path) -> None:
    state = DeliveryState(tmp_path)
    state.record_attempts("crm", "e1", 1)
    state.record_attempts("crm", "e1", 2)
    state.record_attempts("crm", "e2", 1)
    state.record_attempts("other", "e1", 5)
    state.close()
    state = DeliveryState(tmp_path)
    assert state.attempts("crm") == {"e1": 2, "e2": 1}
    state.settle("crm", "e1")
    assert state.attempts("crm") == {"e2": 1}
    assert state.forget_attempts_before(10**15) == 2
    assert state.attempts("other") == {}


def test_disabled_until_enabled_or_its_configuration_changes(tmp_path: Path) -> None:
    sub = subscriber()
    state = DeliveryState(tmp_path)
    assert read_only_disabled(tmp_path, sub) is None
    state.disable(sub, 410, "HTTP 410: gone")
    disabled = state.disabled(sub)
    assert disabled is not None and disabled.status == 410
    assert read_only_disabled(tmp_path, sub) is not None
    assert state.enable("crm") is True
    assert state.enable("crm") is False
    assert state.disabled(sub) is None

    state.disable(sub, 410, "gone")
    changed = subscriber(", timeout: 3s")
    assert fingerprint(changed) != fingerprint(sub)
    assert read_only_disabled(tmp_path, changed) is None
    assert state.disabled(changed) is None
    assert state.disabled(sub) is None  # cleared, not only hidden


def _ms() -> int:
    return int(time.time() * 1000)


def test_an_anchor_recorded_now_is_the_wall_clock_in_milliseconds(tmp_path: Path) -> None:
    state = DeliveryState(tmp_path)
    before = _ms()
    anchored = state.anchor("crm")
    after = _ms()
    assert before <= anchored <= after
    assert state.anchored("crm") == anchored  # read back, by this name only
    assert state.anchored("other") is None


def test_forgetting_counts_goes_by_when_each_was_last_updated(tmp_path: Path) -> None:
    state = DeliveryState(tmp_path)
    before = _ms()
    state.record_attempts("crm", "e1", 1)
    after = _ms()
    assert state.forget_attempts_before(before) == 0  # updated at or after `before`
    assert state.attempts("crm") == {"e1": 1}
    assert state.forget_attempts_before(after + 1) == 1
    assert state.attempts("crm") == {}


def test_a_disabled_record_reads_back_whole(tmp_path: Path) -> None:
    sub = subscriber()
    state = DeliveryState(tmp_path)
    before = _ms()
    state.disable(sub, 410, "HTTP 410: gone")
    after = _ms()
    for found in (state.disabled(sub), read_only_disabled(tmp_path, sub)):
        assert found is not None
        assert (found.subscriber, found.status, found.reason) == ("crm", 410, "HTTP 410: gone")
        assert before <= found.at_ms <= after
    state.disable(sub, None, "disabled by an operator")  # a second disable replaces the first
    again = state.disabled(sub)
    assert again is not None and (again.status, again.reason) == (None, "disabled by an operator")


def test_the_state_file_syncs_every_write(tmp_path: Path) -> None:
    """A subscriber disabled on a 410, an anchor, attempt counts: each write is durable
    when it returns (WAL, ``synchronous=FULL``), like the embedded log's (tests/README, M09)."""
    state = DeliveryState(tmp_path)
    try:
        state.anchor("crm", at_ms=1_000)
        assert_durable(state._db())
    finally:
        state.close()
