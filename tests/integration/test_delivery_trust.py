"""Delivery you can trust from the first event, and watch while it happens (issues 11, 17.2).

``relay serve`` as a real process (embedded log and Kafka/Tansu), real local subscribers,
``/metrics`` read with prometheus_client's parser, the JSON log lines read from stderr.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import Broker
from tests.subscriber import Subscriber
from tests.support import free_port, unique, wait_ready

pytestmark = pytest.mark.integration

TOKEN = "dev-nexloo-token-0123456789"
ADMIN = "admin-token-0123456789abcdef"


def webhook(number: int, conversation: int | None = None) -> bytes:
    """A Chatwoot message_created body; distinct numbers give distinct events."""
    return json.dumps(
        {
            "event": "message_created",
            "id": number,
            "content": f"message {number}",
            "message_type": "incoming",
            "account": {"id": 1},
            "conversation": {"id": number if conversation is None else conversation},
        }
    ).encode()


def config_text(tmp_path: Path, port: int, subscribers: str, kafka: Broker | None = None) -> str:
    text = f"""
listen: {{host: 127.0.0.1, port: {port}}}
data_dir: {tmp_path / "var"}
logging: {{level: info, format: json}}
admin: {{token: {ADMIN}}}
sources:
  nexloo: {{provider: chatwoot, tokens: [{TOKEN}]}}
subscribers:
{subscribers}
"""
    if kafka is not None:
        text += f"""
kafka: {{bootstrap_servers: "{kafka.bootstrap}", idempotence: false,
        session_timeout_ms: 6000, heartbeat_interval_ms: 1000}}
topics: {{events: {unique("tr.events")}, raw: {unique("tr.raw")},
         deadletter: {unique("tr.dead")}}}
"""
    return text


class Relay:
    def __init__(self, port: int, log_path: Path, process: asyncio.subprocess.Process) -> None:
        self.port = port
        self.log_path = log_path
        self.process = process

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines

    async def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        async with aiohttp.ClientSession() as session, session.get(self.url("/metrics")) as r:
            text = await r.text()
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }


@asynccontextmanager
async def relay_serve(tmp_path: Path, text: str, port: int) -> AsyncIterator[Relay]:
    path = tmp_path / "relay.yaml"
    path.write_text(text)
    log_path = tmp_path / f"relay-{port}.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "relay",
            "serve",
            "--config",
            str(path),
            env={**os.environ},
            stdout=log,
            stderr=log,
        )
        try:
            await wait_ready(port, process, within=30)
            yield Relay(port, log_path, process)
        finally:
            if process.returncode is None:
                process.terminate()
            await process.wait()


async def post_all(port: int, bodies: list[bytes]) -> list[str]:
    """Post every body at once; every one must be answered 202. Returns the event ids."""
    async with aiohttp.ClientSession() as session:

        async def one(body: bytes) -> list[str]:
            async with session.post(
                f"http://127.0.0.1:{port}/v1/hooks/nexloo?token={TOKEN}",
                data=body,
                headers={"Content-Type": "application/json"},
            ) as response:
                assert response.status == 202, await response.text()
                ids: list[str] = (await response.json())["ids"]
                return ids

        answers = await asyncio.gather(*(one(body) for body in bodies))
    return [event_id for ids in answers for event_id in ids]


@pytest.fixture
async def subscriber() -> AsyncIterator[Subscriber]:
    sub = await Subscriber().start()
    yield sub
    await sub.close()


def delivered_ids(subscriber: Subscriber) -> set[str]:
    return {r.headers["webhook-id"] for r in subscriber.delivered()}


# --- 1. start position ------------------------------------------------------------------


@pytest.mark.parametrize("bus", ["embedded", "kafka"])
async def test_posts_right_after_ready_reach_a_new_subscriber(
    tmp_path: Path, subscriber: Subscriber, broker: Broker, bus: str
) -> None:
    port = free_port()
    text = config_text(
        tmp_path,
        port,
        f'  - {{name: fresh, url: "{subscriber.url}"}}',  # start_from: latest (the default)
        broker if bus == "kafka" else None,
    )
    async with relay_serve(tmp_path, text, port) as relay:
        ids = await post_all(port, [webhook(n) for n in range(80)])
        assert len(set(ids)) == 80
        await subscriber.wait_for(lambda s: delivered_ids(s) >= set(ids), within=40)
        lines = relay.log_lines()
    assert delivered_ids(subscriber) == set(ids)
    if bus == "kafka":
        assert any(line["event"] == "subscription_anchored" for line in lines)


# --- 2 and 6. flaky is not dead; every failed attempt is visible ------------------------


def flaky_two_in_three() -> Callable[[Subscriber, bytes, dict[str, str]], Any]:
    tries: dict[str, int] = {}

    def script(s: Subscriber, body: bytes, headers: dict[str, str]) -> Any:
        event_id = headers["webhook-id"]
        tries[event_id] = tries.get(event_id, 0) + 1
        return (503, {"Retry-After": "0"}) if tries[event_id] < 3 else 200

    return script


async def test_an_endpoint_failing_two_in_three_gets_every_event_and_each_failure_is_seen(
    tmp_path: Path, subscriber: Subscriber
) -> None:
    subscriber.script = flaky_two_in_three()
    port = free_port()
    # default circuit breaker; a retry budget of 5 attempts
    text = config_text(
        tmp_path,
        port,
        f'  - {{name: flaky, url: "{subscriber.url}", max_in_flight: 16, start_from: earliest,\n'
        "     retry: {max_attempts: 5, initial: 10ms, max: 200ms}}",
    )
    async with relay_serve(tmp_path, text, port) as relay:
        ids = await post_all(port, [webhook(n) for n in range(80)])
        await subscriber.wait_for(lambda s: delivered_ids(s) >= set(ids), within=30)
        await asyncio.sleep(1.2)  # a lag refresh
        metrics = await relay.metrics()
        lines = relay.log_lines()
    assert len(subscriber.delivered()) == 80
    assert len(subscriber.received) == 240  # three attempts each, none given up

    failed = [line for line in lines if line["event"] == "delivery_attempt_failed"]
    assert len(failed) == 160
    first = failed[0]
    assert first["subscriber"] == "flaky"
    assert first["event_id"] in ids
    assert first["attempt"] in (1, 2)
    assert first["status"] == 503
    assert first["error"].startswith("HTTP 503")
    assert first["retry_in"] == 0  # Retry-After: 0
    assert {line["attempt"] for line in failed} == {1, 2}
    assert not [line for line in lines if line["event"] == "circuit_opened"]

    def sample(name: str, **labels: str) -> float:
        return metrics[(name, tuple(sorted({"subscriber": "flaky", **labels}.items())))]

    assert sample("relay_delivery_attempts_total", outcome="http_5xx") == 160
    assert sample("relay_delivery_attempts_total", outcome="delivered") == 80
    assert sample("relay_deliveries_total", outcome="retried") == 160
    assert sample("relay_deliveries_total", outcome="delivered") == 80
    assert sample("relay_deliveries_total", outcome="deadlettered") == 0
    assert sample("relay_circuit_state") == 0
    assert sample("relay_subscriber_disabled") == 0
    assert sample("relay_consumer_lag") == 0
