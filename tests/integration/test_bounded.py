"""Bounded resources: backpressure instead of growth, nothing left behind after load."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from relay.ingress import INGRESS
from tests.support import make_config, relay_client

JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    config = make_config(
        f"""
data_dir: {tmp_path}
sources: {{cw: {{provider: chatwoot}}}}
limits: {{max_in_flight: 2, body_timeout: 5s}}
"""
    )
    async with relay_client(config) as client:
        yield client


async def test_past_max_in_flight_is_503_without_reading(client: TestClient[Any, Any]) -> None:
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b'{"event": "conversation_created", '
        await release.wait()
        yield b'"id": 1}'

    held = [
        asyncio.create_task(client.post("/v1/hooks/cw", data=slow_body(), headers=JSON))
        for _ in range(2)
    ]
    state = client.app[INGRESS]  # type: ignore[index]
    async with asyncio.timeout(5):
        while True:
            if state.in_flight == 2:
                break
            await asyncio.sleep(0.01)
    refused = await client.post("/v1/hooks/cw", data=b"{}", headers=JSON)
    assert refused.status == 503
    assert (await refused.json())["error"] == "overloaded"
    assert refused.headers["Retry-After"] == "1"
    release.set()
    assert [r.status for r in await asyncio.gather(*held)] == [202, 202]
    assert state.in_flight == 0


async def test_no_tasks_left_behind_after_load(client: TestClient[Any, Any]) -> None:
    async def one(n: int) -> int:
        body = {"event": "conversation_created", "id": n, "account_id": 1}
        response = await client.post("/v1/hooks/cw", data=json.dumps(body), headers=JSON)
        await response.read()
        return response.status

    await asyncio.gather(one(-1), one(-2))  # warm: two keep-alive connections, each a task
    await asyncio.sleep(0.1)
    baseline = len(asyncio.all_tasks())
    statuses = []
    for start in range(0, 400, 2):  # two at a time: under max_in_flight
        statuses += await asyncio.gather(one(start), one(start + 1))
    assert set(statuses) == {202}
    await asyncio.sleep(0.2)
    assert len(asyncio.all_tasks()) <= baseline
    assert client.app[INGRESS].in_flight == 0  # type: ignore[index]
