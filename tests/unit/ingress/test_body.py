"""Reading a body within bounds (413 before reading what is declared too large), and which
content types count as JSON."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from relay.ingress.body import (
    BodyTooLarge,
    BrokenBody,
    is_json_content_type,
    read_buffered,
    read_limited,
)


@pytest.mark.parametrize(
    ("header", "json"),
    [
        (None, True),  # senders that omit the header are parsed all the same
        ("", True),
        ("  ", True),
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("text/json", True),
        ("application/cloudevents+json", True),
        ("application/x-www-form-urlencoded", False),
        ("text/plain", False),
        ("text/plain+json", False),  # only application/*+json
        ("application/jsonp", False),
        ("multipart/form-data; boundary=x", False),
    ],
)
def test_which_content_types_are_json(header: str | None, json: bool) -> None:
    assert is_json_content_type(header) is json


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    """A body sent chunked, without a Content-Length."""
    for part in parts:
        yield part


async def reader(limit: int) -> TestClient[web.Request, web.Application]:
    async def handle(request: web.Request) -> web.Response:
        try:
            body = await read_limited(request, limit)
        except BodyTooLarge as exc:
            return web.Response(status=413, text=str(exc))
        except BrokenBody as exc:
            return web.Response(status=400, text=str(exc))
        return web.Response(body=body)

    app = web.Application()
    app.router.add_post("/", handle)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_a_body_up_to_the_limit_is_read_whole() -> None:
    client = await reader(limit=10)
    try:
        response = await client.post("/", data=b"0123456789")
        assert (response.status, await response.read()) == (200, b"0123456789")
        streamed = await client.post("/", data=chunks(b"01234", b"56789"))  # chunked
        assert (streamed.status, await streamed.read()) == (200, b"0123456789")
    finally:
        await client.close()


async def test_a_body_over_the_limit_is_refused_declared_or_not() -> None:
    client = await reader(limit=10)
    try:
        declared = await client.post("/", data=b"0123456789x")
        assert declared.status == 413
        assert await declared.text() == "body of 11 bytes is over the limit of 10"
        chunked = await client.post("/", data=chunks(b"012345", b"67890"))  # no length
        assert chunked.status == 413
        assert await chunked.text() == "body is over the limit of 10 bytes"
    finally:
        await client.close()


async def test_a_broken_gzip_body_is_a_broken_body() -> None:
    client = await reader(limit=1000)
    try:
        response = await client.post(
            "/", data=b"\x1f\x8b not gzip at all", headers={"Content-Encoding": "gzip"}
        )
        assert response.status == 400
        assert (await response.text()).startswith("the body could not be read")
    finally:
        await client.close()


async def test_a_body_that_has_all_arrived_is_taken_at_once_and_still_bounded() -> None:
    seen: list[bool] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.content.is_eof())
        try:
            body = read_buffered(request, 30)
        except BodyTooLarge as exc:
            return web.Response(status=413, text=str(exc))
        except BrokenBody as exc:
            return web.Response(status=400, text=str(exc))
        return web.Response(body=body)

    app = web.Application()
    app.router.add_post("/", handle)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        whole = await client.post("/", data=b"0" * 30)
        assert (whole.status, await whole.read()) == (200, b"0" * 30)
        declared = await client.post("/", data=b"0" * 31)
        assert await declared.text() == "body of 31 bytes is over the limit of 30"
        # 200 bytes once decompressed, 24 on the wire: the limit is on what it becomes
        inflated = await client.post(
            "/", data=gzip.compress(b"0" * 200), headers={"Content-Encoding": "gzip"}
        )
        assert (inflated.status, await inflated.text()) == (
            413,
            "body is over the limit of 30 bytes",
        )
        broken = await client.post(
            "/", data=b"\x1f\x8b not gzip", headers={"Content-Encoding": "gzip"}
        )
        assert broken.status == 400
        assert (await broken.text()).startswith("the body could not be read")
        # the first three were whole before the handler ran; a broken stream never ends
        assert seen == [True, True, True, False]
    finally:
        await client.close()
