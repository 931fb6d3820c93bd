"""Checks that hold for every test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.subscriber import Subscriber

# relay's default data_dir, relative to where pytest runs (the checkout)
DEFAULT_DATA_DIR = Path("var")


def _snapshot(directory: Path) -> dict[str, int]:
    if not directory.is_dir():
        return {}
    return {str(p): p.stat().st_mtime_ns for p in directory.rglob("*") if p.is_file()}


@pytest.fixture(autouse=True)
def _data_dir_is_the_tests_own() -> Iterator[None]:
    """A test that writes into ./var shares its log or spool with other tests and runs
    (a spool left by an interrupted run is drained by the next one): give it
    ``data_dir: {tmp_path}``."""
    before = _snapshot(DEFAULT_DATA_DIR)
    yield
    after = _snapshot(DEFAULT_DATA_DIR)
    written = sorted(name for name, mtime in after.items() if before.get(name) != mtime)
    if written:
        pytest.fail(
            f"wrote {written} under the default data_dir ./var: set data_dir under tmp_path",
            pytrace=False,
        )


@pytest.fixture
async def subscriber() -> AsyncIterator[Subscriber]:
    """A real HTTP subscriber on a loopback port (tests/subscriber.py)."""
    sub = await Subscriber().start()
    yield sub
    await sub.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under the mutation check, run a mutant's unit tests before its integration tests.

    mutmut hands pytest a mutant's tests in no particular order and stops at the first
    failure: the unit test that kills most mutants in milliseconds should not wait behind
    integration tests that take seconds each.
    """
    if "MUTANT_UNDER_TEST" in os.environ:
        items.sort(key=lambda item: "/integration/" in item.nodeid)
