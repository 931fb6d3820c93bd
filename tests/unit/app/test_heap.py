"""A serving process freezes its start-up heap and collects young objects less often."""

from __future__ import annotations

import asyncio
import gc
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from aiohttp import web

from relay.app import heap
from relay.app.serve import serve


@pytest.fixture
def gc_state() -> Iterator[None]:
    threshold = gc.get_threshold()
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


@pytest.mark.usefixtures("gc_state")
def test_settle_freezes_and_raises_the_young_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    kept_freed: list[bool] = []
    monkeypatch.setattr(heap, "keep_freed_memory", lambda: kept_freed.append(True) or True)
    gc.set_threshold(700, 10, 10)
    kept = [object() for _ in range(3)]  # noqa: F841  (alive: frozen with the rest)
    heap.settle()
    assert gc.get_freeze_count() > 1000  # modules and everything else start-up made
    assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, 10, 10)
    assert kept_freed == [True]


@pytest.mark.usefixtures("gc_state")
def test_settle_keeps_a_higher_threshold_and_a_disabled_collector() -> None:
    gc.set_threshold(50_000, 20, 30)
    heap.settle()
    assert gc.get_threshold() == (50_000, 20, 30)
    gc.set_threshold(0, 10, 10)
    heap.settle()
    assert gc.get_threshold()[0] == 0


@pytest.mark.usefixtures("gc_state")
async def test_serve_settles_the_heap_once_it_listens() -> None:
    gc.set_threshold(700, 10, 10)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    task = asyncio.create_task(serve(web.Application(), "127.0.0.1", port, grace=1.0))
    try:
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            break
        for _ in range(100):  # listening comes a step before the heap is settled
            if gc.get_freeze_count():
                break
            await asyncio.sleep(0.01)
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


_CHURN = """
import resource
from relay.app import heap

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

def churn():  # what a produce request does: a few MB allocated, then freed
    start = faults()
    for _ in range(50):
        held = [bytes(1 << 20) for _ in range(8)]
        del held
    return faults() - start

churn()
before = churn()
applied = heap.keep_freed_memory()
churn()
print(applied, before, churn())
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
def test_freed_memory_is_reused_instead_of_faulted_in_again() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.pop("GLIBC_TUNABLES", None)
    done = subprocess.run(
        [sys.executable, "-c", _CHURN], env=env, capture_output=True, text=True, check=True
    )
    applied, before, after = done.stdout.split()
    assert applied == "True"
    # glibc's defaults hand the freed megabytes back and fault them in again next round
    assert int(before) > 1000
    assert int(after) * 10 < int(before)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MALLOC_TRIM_THRESHOLD_", "1048576"),
        ("MALLOC_MMAP_THRESHOLD_", "131072"),
        ("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=1048576"),
    ],
)
def test_the_operators_own_malloc_settings_win(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    assert heap.keep_freed_memory() is False


def test_other_c_libraries_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platform, "libc_ver", lambda: ("", ""))
    assert heap.keep_freed_memory() is False
