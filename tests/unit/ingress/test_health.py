"""The probes and /metrics: what a load balancer and Prometheus read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CONTENT_TYPE_LATEST

from relay.bus.memory import MemoryBus
from relay.ingress.health import healthz, metrics, readyz
from relay.ingress.state import INGRESS, IngressState, live_for
from relay.live import Current
from relay.pipeline import Pipeline
from tests.support import make_config

METRICS_TOKEN = "metrics-token-0123456789"


class Spooled(MemoryBus):
    """A bus with modes, as the spool around Kafka has."""

    name = "kafka"
    mode: str | None = "spooling"


def app_for(bus: Any, yaml_text: str = "sources: {cw: {provider: chatwoot}}") -> web.Application:
    config = make_config(yaml_text)
    current = Current(live_for(config))
    app = web.Application()
    app[INGRESS] = IngressState(Pipeline(bus, current, config.topics), current)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


@pytest.fixture
async def served() -> AsyncIterator[tuple[TestClient[Any, Any], MemoryBus]]:
    bus = MemoryBus()
    async with TestClient(TestServer(app_for(bus))) as client:
        yield client, bus


async def test_alive_whatever_the_bus(served: tuple[TestClient[Any, Any], MemoryBus]) -> None:
    client, _ = served  # the bus was never started
    response = await client.get("/healthz")
    assert (response.status, await response.json()) == (200, {"status": "ok"})


async def test_ready_once_the_bus_is(served: tuple[TestClient[Any, Any], MemoryBus]) -> None:
    client, bus = served
    response = await client.get("/readyz")
    assert response.status == 503
    assert await response.json() == {"status": "not_ready", "bus": "memory"}
    await bus.start()
    response = await client.get("/readyz")
    assert (response.status, await response.json()) == (200, {"status": "ready", "bus": "memory"})


async def test_not_ready_while_shutting_down(
    served: tuple[TestClient[Any, Any], MemoryBus],
) -> None:
    client, bus = served
    await bus.start()
    client.app[INGRESS].accepting = False
    response = await client.get("/readyz")
    assert response.status == 503
    assert await response.json() == {
        "status": "not_ready",
        "bus": "memory",
        "reason": "shutting down",
    }


async def test_a_spooling_bus_is_ready_and_says_so() -> None:
    bus = Spooled()
    await bus.start()
    async with TestClient(TestServer(app_for(bus))) as client:
        response = await client.get("/readyz")
        assert response.status == 200
        assert await response.json() == {"status": "ready", "bus": "kafka", "mode": "spooling"}


async def test_metrics_are_open_without_a_token(
    served: tuple[TestClient[Any, Any], MemoryBus],
) -> None:
    client, _ = served
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE_LATEST
    assert "relay_requests_total" in await response.text()


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": METRICS_TOKEN}],
)
async def test_metrics_with_a_token_refuse_any_other_credential(headers: dict[str, str]) -> None:
    config = f"sources: {{cw: {{provider: chatwoot}}}}\nmetrics: {{token: {METRICS_TOKEN}}}"
    async with TestClient(TestServer(app_for(MemoryBus(), config))) as client:
        refused = await client.get("/metrics", headers=headers)
        assert refused.status == 401
        assert refused.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
        assert (await refused.json())["error"] == "unauthorized"
        assert "relay_requests_total" not in await refused.text()
        for given in (
            {"Authorization": f"Bearer {METRICS_TOKEN}"},
            {"X-Relay-Token": METRICS_TOKEN},
        ):
            allowed = await client.get("/metrics", headers=given)
            assert allowed.status == 200 and "relay_requests_total" in await allowed.text()
        in_the_url = await client.get("/metrics", params={"token": METRICS_TOKEN})
        assert in_the_url.status == 401  # a URL is logged: the token is not read from it
