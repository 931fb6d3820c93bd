"""The lean server on a real socket: raw bytes in, raw bytes out."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from relay.ingress.guard import GUARD
from relay.ingress.lean import MAX_HEAD, LeanConnection, LeanServer
from tests.support import RelayTestServer, fixture_bytes, make_config, poll_until, relay_client

BODY = fixture_bytes("chatwoot/contact_created.json")


def _config(tmp_path: Path, server: str = "lean") -> Any:
    return make_config(
        f"""
data_dir: {tmp_path}
listen: {{server: {server}}}
sources:
  cw: {{provider: chatwoot}}
limits: {{max_body_bytes: 4096, body_timeout: 2s, header_timeout: 1s}}
"""
    )


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    async with relay_client(_config(tmp_path)) as client:
        server = client.server
        assert isinstance(server, RelayTestServer) and server.listener is not None
        assert isinstance(server.listener.lean, LeanServer)
        watch = asyncio.create_task(client.app[GUARD].watch(server.listener.protocols))
        try:
            yield client
        finally:
            watch.cancel()


def hook(body: bytes = BODY, *, close: bool = False, rid: str | None = None) -> bytes:
    extra = b"Connection: close\r\n" if close else b""
    if rid:
        extra += b"X-Request-Id: " + rid.encode() + b"\r\n"
    head = b"POST /v1/hooks/cw HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    return head + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body


async def talk(client: TestClient[Any, Any], *pieces: bytes) -> bytes:
    """Send ``pieces`` one write each, then read until the server closes."""
    assert client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.01)  # separate segments, so heads arrive split
        async with asyncio.timeout(10):
            return await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def answers(data: bytes) -> list[tuple[bytes, dict[str, str], bytes]]:
    """(status line, headers, body) of each response in ``data``."""
    found = []
    while data:
        head, _, rest = data.partition(b"\r\n\r\n")
        status, *lines = head.split(b"\r\n")
        headers = dict(line.decode().split(": ", 1) for line in lines)
        length = int(headers.get("Content-Length", "0"))
        found.append((status, headers, rest[:length]))
        data = rest[length:]
    return found


async def test_pipelined_hooks_are_answered_in_order(client: TestClient[Any, Any]) -> None:
    data = await talk(client, hook(rid="r1") + hook(rid="r2") + hook(rid="r3", close=True))
    got = answers(data)
    assert [status for status, _, _ in got] == [b"HTTP/1.1 202 Accepted"] * 3
    assert [headers["X-Request-Id"] for _, headers, _ in got] == ["r1", "r2", "r3"]
    assert got[-1][1]["Connection"] == "close" and "Connection" not in got[0][1]
    assert json.loads(got[0][2])["accepted"] == 1


async def test_a_head_split_in_pieces_is_served(client: TestClient[Any, Any]) -> None:
    request = hook(close=True)
    data = await talk(client, request[:7], request[7:30], request[30:-10], request[-10:])
    [(status, headers, _)] = answers(data)
    assert status == b"HTTP/1.1 202 Accepted" and headers["Server"] == "relay"


async def test_a_head_that_never_ends_is_cut(client: TestClient[Any, Any]) -> None:
    assert await talk(client, b"POST /v1/hooks/cw HTTP/1.1\r\nHost: x\r\n") == b""


async def test_an_idle_keep_alive_is_cut_after_its_answer(client: TestClient[Any, Any]) -> None:
    [(status, _, _)] = answers(await talk(client, hook()))
    assert status == b"HTTP/1.1 202 Accepted"


async def test_bodies_over_the_limit_are_413(client: TestClient[Any, Any]) -> None:
    big = b"[" + b"1," * 3000 + b"1]"
    [(status, _, body)] = answers(await talk(client, hook(big, close=True)))
    assert status == b"HTTP/1.1 413 Request Entity Too Large"
    assert json.loads(body)["error"] == "payload_too_large"
    chunked = (
        b"POST /v1/hooks/cw HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n" + b"%x\r\n%s\r\n" % (len(big), big) + b"0\r\n\r\n"
    )
    [(status, _, _)] = answers(await talk(client, chunked))
    assert status.startswith(b"HTTP/1.1 413")


async def test_a_chunked_body_and_an_expectation_are_served(client: TestClient[Any, Any]) -> None:
    half = len(BODY) // 2
    chunked = (
        b"POST /v1/hooks/cw HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%s\r\n" % (half, BODY[:half])
        + b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY) - half, BODY[half:])
    )
    data = await talk(client, chunked[:80], chunked[80:] + hook(close=True))
    assert [status for status, _, _ in answers(data)] == [b"HTTP/1.1 202 Accepted"] * 2
    expecting = hook(close=True).replace(b"Host: x\r\n", b"Host: x\r\nExpect: 100-continue\r\n")
    head, _, body = expecting.partition(b"\r\n\r\n")
    data = await talk(client, head + b"\r\n\r\n", body)
    assert data.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\n")


async def test_http_1_0_is_answered_in_kind_and_closed(client: TestClient[Any, Any]) -> None:
    request = b"POST /v1/hooks/cw HTTP/1.0\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
    [(status, headers, _)] = answers(await talk(client, request))
    assert status == b"HTTP/1.0 202 Accepted" and "Connection" not in headers


async def test_other_requests_go_to_aiohttp_with_the_bytes_already_read(
    client: TestClient[Any, Any],
) -> None:
    # the request line arrives alone, before the lean server can tell it is not a hook
    probe = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    [(status, _, body)] = answers(await talk(client, probe[:12], probe[12:]))
    assert status == b"HTTP/1.1 200 OK" and b"ok" in body
    # a hook, then a probe on the same connection, in one segment: both, in order
    data = await talk(client, hook(rid="first") + probe)
    [(first, headers, _), (second, _, _)] = answers(data)
    assert first.endswith(b"202 Accepted") and headers["X-Request-Id"] == "first"
    assert second == b"HTTP/1.1 200 OK"


async def test_malformed_and_oversized_heads_get_aiohttps_400(
    client: TestClient[Any, Any],
) -> None:
    garbage = await talk(client, hook() + b"GARBAGE\r\n\r\n")
    [(ok, _, _), (bad, _, body)] = answers(garbage)
    assert ok.endswith(b"202 Accepted") and bad.endswith(b"400 Bad Request")
    assert b"Invalid method" in body
    huge = b"POST /v1/hooks/cw HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (MAX_HEAD + 10)
    [(status, _, _)] = answers(await talk(client, huge + b"\r\n\r\n"))
    assert status.endswith(b"400 Bad Request")


@pytest.mark.parametrize(
    "request_bytes",
    [
        hook(close=True, rid="same"),
        hook(b"{not json", close=True, rid="same"),
        hook(close=True, rid="same").replace(b"/hooks/cw", b"/hooks/nobody"),
        hook(close=True, rid="same").replace(b"application/json", b"text/plain"),
    ],
)
async def test_lean_answers_are_aiohttps_byte_for_byte(
    tmp_path: Path, request_bytes: bytes
) -> None:
    """Date and the event ids aside, both servers write the same bytes."""
    written = []
    for server in ("lean", "aiohttp"):
        async with relay_client(_config(tmp_path / server, server)) as client:
            [(status, headers, body)] = answers(await talk(client, request_bytes))
            headers.pop("Date")
            parsed = json.loads(body)
            parsed.pop("ids", None)
            written.append((status, list(headers.items()), parsed))
    assert written[0] == written[1]


def _lean(client: TestClient[Any, Any]) -> LeanServer:
    server = client.server
    assert isinstance(server, RelayTestServer) and server.listener is not None
    assert isinstance(server.listener.lean, LeanServer)
    return server.listener.lean


async def test_a_sender_that_pipelines_without_reading_is_read_one_request_ahead(
    client: TestClient[Any, Any],
) -> None:
    """Bounded memory: requests wait in the socket, not in the server (aiohttp's bound)."""
    lean = _lean(client)
    padded = BODY + b" " * (4000 - len(BODY))  # ~64 requests in one 256 KiB read at most
    assert client.port is not None
    _, writer = await asyncio.open_connection("127.0.0.1", client.port)
    queued: list[int] = []

    async def flood() -> None:
        for _ in range(1000):  # 4 MB, answers never read
            writer.write(hook(padded))
            await writer.drain()

    sending = asyncio.create_task(flood())
    try:
        for _ in range(100):
            queued.extend(len(c._queue) for c in lean.connections)
            await asyncio.sleep(0.02)
    finally:
        sending.cancel()
        writer.transport.abort()
    assert queued and max(queued) <= 100, max(queued, default=0)


async def test_a_bad_chunk_inside_a_lean_body_is_400_at_once(
    client: TestClient[Any, Any],
) -> None:
    bad = b"POST /v1/hooks/cw HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    data = await talk(client, bad + b'5\r\n{"a":\r\n', b"zz\r\n")
    [(status, headers, body)] = answers(data)
    assert status == b"HTTP/1.1 400 Bad Request", status  # not 408 after body_timeout
    assert json.loads(body)["error"] == "bad_request" and headers["Connection"] == "close"


async def test_requests_a_close_leaves_unanswered_are_not_kept_active(
    client: TestClient[Any, Any],
) -> None:
    lean, guard = _lean(client), client.app[GUARD]
    assert client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(hook() + hook() + hook())
    writer.write_eof()  # half-close: the answers due, then the server closes
    async with asyncio.timeout(10):
        await reader.read()
    writer.close()
    await poll_until(lambda: not lean.connections, what="the connection forgotten")
    assert not [p for p in guard._active if isinstance(p, LeanConnection)]
