"""Kafka away: ingress spools to disk, keeps answering 202 up to the bound, drains in order."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from relay.config import Config
from tests.broker import Broker, running_broker
from tests.factories import chatwoot_message
from tests.support import consume_ids, drain, free_port, make_config, relay_client, unique

pytestmark = pytest.mark.integration


def conversation(n: int) -> bytes:
    return json.dumps(
        {"event": "conversation_created", "id": n, "account_id": 1, "status": "open"}
    ).encode()


def spool_config(
    bootstrap: str, data_dir: Path, events: str, max_bytes: int = 10_000_000, raw: str = ""
) -> Config:
    return make_config(
        f"""
data_dir: {data_dir}
kafka: {{bootstrap_servers: "{bootstrap}", idempotence: false, spool_after: 300ms,
        spool_max_bytes: {max_bytes}, request_timeout_ms: 3000}}
sources: {{cw: {{provider: chatwoot}}}}
topics: {{events: {events}, raw: {raw or unique("spool.raw")}}}
"""
    )


async def post(
    client: TestClient[Any, Any], n: int, body: bytes | None = None
) -> tuple[int, dict[str, Any]]:
    response = await client.post(
        "/v1/hooks/cw",
        data=conversation(n) if body is None else body,
        headers={"Content-Type": "application/json"},
    )
    return response.status, await response.json()


async def readiness(client: TestClient[Any, Any]) -> dict[str, Any]:
    response = await client.get("/readyz")
    body: dict[str, Any] = await response.json()
    body["http"] = response.status
    return body


async def wait_for_mode(client: TestClient[Any, Any], mode: str, within: float = 20) -> None:
    async with asyncio.timeout(within):
        while True:
            if (await readiness(client)).get("mode") == mode:
                return
            await asyncio.sleep(0.05)


@pytest.fixture
async def stopped_broker(own_broker: Broker) -> AsyncIterator[Broker]:
    yield own_broker
    own_broker.process.send_signal(signal.SIGCONT)


async def test_broker_pause_spools_and_drains_in_order(own_broker: Broker, tmp_path: Path) -> None:
    """Sent 42 messages of one conversation across an outage: all land, in the order sent."""
    events, raw = unique("spool.events"), unique("spool.raw")
    config = spool_config(own_broker.bootstrap, tmp_path, events, raw=raw)
    async with relay_client(config) as client:
        status, before = await post(
            client, 0, chatwoot_message(0, conversation=7)
        )  # direct: the broker is up
        assert status == 202
        assert (await readiness(client))["mode"] == "direct"

        own_broker.process.send_signal(signal.SIGSTOP)
        try:
            answers = [
                await post(client, n, chatwoot_message(n, conversation=7)) for n in range(1, 41)
            ]
            assert {status for status, _ in answers} == {202}
            state = await readiness(client)
            assert (state["http"], state["mode"]) == (200, "spooling")
        finally:
            own_broker.process.send_signal(signal.SIGCONT)

        await wait_for_mode(client, "direct")
        status, after = await post(client, 41, chatwoot_message(41, conversation=7))
        assert status == 202
    acked = [*before["ids"], *(i for _, body in answers for i in body["ids"]), *after["ids"]]
    assert len(acked) == 42
    found = await consume_ids(own_broker.bootstrap, events, set(acked))
    assert set(found) == set(acked)  # sent 42, acknowledged 42, lost 0
    # One key, so one partition: its offsets are the order Kafka holds. Record by record,
    # it must be the order of the posts (an at-least-once duplicate may only repeat one).
    landed = await drain(own_broker.bootstrap, events, settle=0.5)
    assert {r.key for r in landed} == {b"cw:7"}
    order = [int(json.loads(r.value)["data"]["message"]["id"]) for r in landed]
    assert list(dict.fromkeys(order)) == list(range(42)), order
    bodies = await drain(own_broker.bootstrap, raw, settle=0.5)  # the raw copies too
    raw_order = [json.loads(r.value)["id"] for r in bodies]
    assert list(dict.fromkeys(raw_order)) == list(range(42)), raw_order


async def test_spool_bound_answers_503_with_retry_after(own_broker: Broker, tmp_path: Path) -> None:
    config = spool_config(own_broker.bootstrap, tmp_path, unique("spool.events"), max_bytes=4000)
    async with relay_client(config) as client:
        await post(client, 0)
        own_broker.process.send_signal(signal.SIGSTOP)
        try:
            statuses = []
            for n in range(1, 30):
                response = await client.post(
                    "/v1/hooks/cw",
                    data=conversation(n),
                    headers={"Content-Type": "application/json"},
                )
                statuses.append(response.status)
                if response.status == 503:
                    assert response.headers["Retry-After"]
                    assert (await response.json())["error"] == "unavailable"
            assert statuses[0] == 202
            assert 503 in statuses
            assert (await readiness(client))["http"] == 503  # full: not ready
        finally:
            own_broker.process.send_signal(signal.SIGCONT)
        await wait_for_mode(client, "direct")
        assert (await readiness(client))["http"] == 200


async def test_broker_down_at_start_then_up(tmp_path: Path) -> None:
    port = free_port()
    events = unique("spool.events")
    config = spool_config(f"127.0.0.1:{port}", tmp_path, events)
    async with relay_client(config) as client:
        assert (await readiness(client))["mode"] == "spooling"
        answers = [await post(client, n) for n in range(5)]
        assert {status for status, _ in answers} == {202}
        with running_broker(port) as broker:
            await wait_for_mode(client, "direct", within=30)
            acked = {i for _, body in answers for i in body["ids"]}
            found = await consume_ids(broker.bootstrap, events, acked)
            assert set(found) == acked


async def test_a_record_kafka_would_refuse_is_413_not_spooled(
    own_broker: Broker, tmp_path: Path
) -> None:
    config = make_config(
        f"""
data_dir: {tmp_path}
kafka: {{bootstrap_servers: "{own_broker.bootstrap}", idempotence: false, max_record_bytes: 600}}
sources: {{cw: {{provider: chatwoot}}}}
topics: {{events: {unique("big.events")}}}
"""
    )
    async with relay_client(config) as client:
        big = {"event": "conversation_created", "id": 1, "account_id": 1, "note": "x" * 1000}
        response = await client.post(
            "/v1/hooks/cw", data=json.dumps(big), headers={"Content-Type": "application/json"}
        )
        assert response.status == 413
        assert "max_record_bytes" in (await response.json())["detail"]
        assert (await readiness(client))["mode"] == "direct"  # nothing stuck in a spool
        status, _ = await post(client, 2)
        assert status == 202
