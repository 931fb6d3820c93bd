"""The request-context middleware: one request id per request, bound for its log lines only."""

from __future__ import annotations

import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from relay.ingress.middleware import request_context

pytestmark = pytest.mark.integration
log = structlog.get_logger("test")


async def binds(request: web.Request) -> web.Response:
    structlog.contextvars.bind_contextvars(source="first")
    log.warning("one")
    return web.Response(text="ok")


async def logs(request: web.Request) -> web.Response:
    log.warning("two")
    return web.Response(text="ok")


async def test_each_request_logs_with_its_own_id_and_nothing_of_the_one_before() -> None:
    app = web.Application(middlewares=[request_context])
    app.router.add_get("/binds", binds)
    app.router.add_get("/logs", logs)
    async with TestClient(TestServer(app)) as client:  # one keep-alive connection
        with capture_logs(processors=[merge_contextvars]) as lines:
            first = await client.get("/binds")
            second = await client.get("/logs")
            third = await client.get("/logs", headers={"X-Request-Id": "given-1"})
    ids = [r.headers["X-Request-Id"] for r in (first, second, third)]
    assert len(set(ids)) == 3 and ids[2] == "given-1"
    assert [(line["event"], line["request_id"]) for line in lines] == list(
        zip(["one", "two", "two"], ids, strict=True)
    )
    assert lines[0]["source"] == "first"
    assert "source" not in lines[1] and "source" not in lines[2]
