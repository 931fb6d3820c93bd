"""Fixtures for the cli's tests, which run ``relay.cli.main`` in this process."""

from __future__ import annotations

import pytest

from relay import logs


@pytest.fixture(autouse=True)
def _logging_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """``relay replay`` and ``relay serve`` configure structlog for the process: printing to
    this test's captured stderr, with loggers cached on first use. pytest closes that
    stream after the test, and every module logger first used meanwhile would fail on it in
    later tests ("I/O operation on closed file"). In-process runs keep the tests' logging."""
    monkeypatch.setattr(logs, "configure", lambda *args, **kwargs: None)
