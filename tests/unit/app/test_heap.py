"""A serving process freezes its start-up heap and collects young objects less often."""

from __future__ import annotations

import asyncio
import gc
import socket
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
def test_settle_freezes_and_raises_the_young_threshold() -> None:
    gc.set_threshold(700, 10, 10)
    kept = [object() for _ in range(3)]  # noqa: F841  (alive: frozen with the rest)
    heap.settle()
    assert gc.get_freeze_count() > 1000  # modules and everything else start-up made
    assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, 10, 10)


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
