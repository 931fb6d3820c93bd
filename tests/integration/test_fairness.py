"""Each source has its own share of in-flight requests: slow bodies on one source do not
refuse another source's webhooks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from relay.config import ConfigError
from relay.ingress import INGRESS
from tests.support import make_config, relay_client

JSON = {"Content-Type": "application/json"}
SLOW_TOKEN = "slow-token-0123456789abcdef"
FAIR_TOKEN = "fair-token-0123456789abcdef"


async def test_slow_bodies_on_one_source_leave_the_others_served(tmp_path: Path) -> None:
    config = make_config(
        f"""
data_dir: {tmp_path}
sources:
  slow: {{provider: chatwoot, tokens: ["{SLOW_TOKEN}"]}}
  fair: {{provider: chatwoot, tokens: ["{FAIR_TOKEN}"]}}
limits: {{max_in_flight: 8, body_timeout: 20s}}
"""
    )
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b'{"event": "conversation_created", '
        await release.wait()
        yield b'"id": 1, "account_id": 1}'

    async with relay_client(config) as client:
        state = client.app[INGRESS]  # type: ignore[index]
        slow = state.current.live.ingress.sources["slow"]
        assert slow.max_in_flight == 2  # the default: a quarter of 8

        async def post_slowly() -> tuple[int, Any]:
            response = await client.post(
                f"/v1/hooks/slow?token={SLOW_TOKEN}", data=slow_body(), headers=JSON
            )
            return response.status, await response.json()

        # As many slow bodies as the whole process could hold: only the source's share is.
        held = [asyncio.create_task(post_slowly()) for _ in range(8)]
        refused_tasks = []
        async with asyncio.timeout(10):
            for task in asyncio.as_completed(held):
                refused_tasks.append(await task)
                if len(refused_tasks) == 6:
                    break
        refused = refused_tasks
        assert {status for status, _ in refused} == {503}
        assert {body["error"] for _, body in refused} == {"overloaded"}
        assert slow.in_flight == 2
        assert state.in_flight == 2

        # The other source is served while the slow one's share is taken.
        body = {"event": "conversation_created", "id": 2, "account_id": 1}
        served = await client.post(
            f"/v1/hooks/fair?token={FAIR_TOKEN}", data=json.dumps(body), headers=JSON
        )
        assert served.status == 202, await served.text()

        release.set()
        statuses = [status for status, _ in await asyncio.gather(*held)]
        assert sorted(statuses) == [202, 202, 503, 503, 503, 503, 503, 503]
        assert state.in_flight == 0
        assert slow.in_flight == 0


def test_a_share_above_the_process_limit_is_refused() -> None:
    refused = r"sources\.a\.max_in_flight: must be at most limits\.max_in_flight \(10\)"
    with pytest.raises(ConfigError, match=refused):
        make_config(
            "sources: {a: {provider: chatwoot, max_in_flight: 100}}\nlimits: {max_in_flight: 10}"
        )
