"""relay.delivery.client against real local servers: aiohttp's, and raw asyncio servers that
misbehave on purpose (close mid-answer, send garbage, stall, flood, chunk, speak TLS).

Each test runs on asyncio's loop and on uvloop's, what `relay serve` runs on (the
loop factories come from tests/unit/delivery/conftest.py)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from relay.delivery import client as client_module
from relay.delivery.client import (
    Client,
    ConnectError,
    ConnectionClosed,
    InvalidHeader,
    ProtocolError,
)
from tests.pki import OPENSSL, make_pki
from tests.support import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]
"""One connection of a raw server: the reader, the writer, and the connection's number."""

NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"


class RawServer:
    """A TCP server running a scripted handler per connection; counts what it saw."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests = 0
        self.closed = 0
        self.server: asyncio.Server | None = None
        self._changed = asyncio.Condition()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hook"

    async def start(self, tls: ssl.SSLContext | None = None) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=tls)
        return self

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer, self.connections)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.closed += 1
            writer.close()
            async with self._changed:
                self._changed.notify_all()

    async def wait_closed(self, count: int) -> None:
        """Until ``count`` connections have ended (the test's own timeout bounds it)."""
        async with asyncio.timeout(5), self._changed:
            await self._changed.wait_for(lambda: self.closed >= count)

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        """One request (head and its Content-Length body), or b"" at the end of the stream."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return b""
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        self.requests += 1
        return head + await reader.readexactly(length)


async def serving(handler: Handler) -> RawServer:
    return await RawServer(handler).start()


def client_for(url: str, **options: object) -> Client:
    settings: dict[str, object] = {"headers": {"User-Agent": "relay/test"}, "timeout": 5.0}
    settings["max_idle"] = 4
    settings.update(options)
    return Client(url, **settings)  # type: ignore[arg-type]


@asynccontextmanager
async def posting(server: RawServer, **options: object) -> AsyncIterator[Client]:
    """A client of ``server`` (started here if it is not yet); both closed at the end."""
    if server.server is None:
        await server.start()
    client = client_for(server.url, **options)
    try:
        yield client
    finally:
        await client.close()
        await server.close()


def answering(*answers: bytes) -> RawServer:
    """A server answering each request of a connection with the next answer in turn."""
    server: RawServer

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        for answer in answers:
            if not await server.read_request(reader):
                return
            writer.write(answer)
            await writer.drain()
        await reader.read()  # keep the connection until the client closes it

    server = RawServer(handler)
    return server


def cut_short(partial: bytes) -> RawServer:
    """A server that answers a request with ``partial`` and closes the connection."""
    server: RawServer

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server.read_request(reader)
        writer.write(partial)
        await writer.drain()

    server = RawServer(handler)
    return server


# --- the ordinary path -------------------------------------------------------------------


async def test_posts_body_and_headers_and_reuses_one_connection() -> None:
    seen: list[tuple[bytes, dict[str, str], str]] = []
    peers: set[object] = set()

    async def hook(request: web.Request) -> web.Response:
        seen.append((await request.read(), dict(request.headers), request.path_qs))
        peers.add(request.transport.get_extra_info("peername") if request.transport else None)
        return web.Response(status=202, headers={"Retry-After": "7"}, text="accepted")

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("/hook?a=1"))
    client = client_for(url)
    try:
        for n in range(3):
            response = await client.post(b'{"n": %d}' % n, {"Content-Type": "application/json"})
            assert response.status == 202
            assert response.headers["retry-after"] == "7"
            assert response.body == b"accepted"
    finally:
        await client.close()
        await server.close()
    assert [body for body, _, _ in seen] == [b'{"n": 0}', b'{"n": 1}', b'{"n": 2}']
    body, headers, target = seen[0]
    assert target == "/hook?a=1"
    assert headers["Host"] == url.split("/")[2]
    assert headers["User-Agent"] == "relay/test"
    assert headers["Content-Type"] == "application/json"
    assert headers["Content-Length"] == str(len(body))
    assert "Cookie" not in headers
    assert len(peers) == 1  # keep-alive: every request on the one connection


async def test_an_ipv6_literal_and_userinfo_in_the_url() -> None:
    heads: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(NO_CONTENT)
        await writer.drain()
        writer.close()

    try:
        server = await asyncio.start_server(handler, "::1", 0)
    except OSError:
        pytest.skip("no IPv6 loopback here")
    port = server.sockets[0].getsockname()[1]
    client = client_for(f"http://relay:s%40cret@[::1]:{port}/hook")
    try:
        assert (await client.post(b"{}", {})).status == 204
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
    [head] = heads
    assert f"Host: [::1]:{port}\r\n".encode() in head
    assert b"Authorization: Basic cmVsYXk6c0BjcmV0\r\n" in head  # relay:s@cret


async def test_a_chunked_answer_is_read_whole_and_the_connection_kept() -> None:
    chunked = (
        b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nupstr\r\n8\r\neam down\r\n0\r\n\r\n"
    )
    server = answering(chunked, chunked)
    async with posting(server) as client:
        for _ in range(2):
            response = await client.post(b"{}", {})
            assert (response.status, response.body) == (500, b"upstream down")
    assert (server.connections, server.requests) == (1, 2)


async def test_a_body_is_kept_up_to_the_cap_and_drained_to_reuse_the_connection() -> None:
    long = b"x" * 5000
    answer = b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n%s" % (len(long), long)
    server = answering(answer, answer)
    async with posting(server, keep_body=100) as client:
        for _ in range(2):
            response = await client.post(b"{}", {})
            assert (response.status, response.body) == (400, b"x" * 100)
    assert server.connections == 1


async def test_a_huge_body_is_not_read_its_connection_is_closed_and_the_status_stands() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")
        chunk = b"y" * 65536
        for _ in range(200):  # 13 MB at most, far past the drain limit
            writer.write(chunk)
            await writer.drain()
        await server.read_request(reader)  # the next request, if the connection were reused

    server = await serving(handler)
    async with posting(server) as client:
        first = await client.post(b"{}", {})
        second = await client.post(b"{}", {})
    assert (first.status, len(first.body)) == (200, client_module.KEEP_BODY)
    assert second.status == 200
    assert server.connections == 2  # the first connection was not kept


async def test_connection_close_and_bodies_read_to_the_end_of_the_stream() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\nbusy, later")
        await writer.drain()

    server = await serving(handler)
    async with posting(server) as client:
        for _ in range(2):
            response = await client.post(b"{}", {})
            assert (response.status, response.body) == (503, b"busy, later")
    assert server.connections == 2


async def test_a_body_without_length_is_not_waited_for_past_its_first_read() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nok so far")
        await writer.drain()
        await reader.read()  # and never closes: the body has no end

    server = await serving(handler)
    async with posting(server, timeout=5.0) as client:
        for _ in range(2):
            response = await asyncio.wait_for(client.post(b"{}", {}), 2)
            assert (response.status, response.body) == (200, b"ok so far")
    assert server.connections == 2  # such a connection is never reused


async def test_an_interim_100_continue_is_skipped() -> None:
    server = answering(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
    )
    async with posting(server) as client:
        assert (await client.post(b"{}", {})).status == 201


async def test_an_interim_answer_alone_is_no_answer() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # then gone
        await writer.drain()

    server = await serving(handler)
    async with posting(server) as client:
        with pytest.raises(ConnectionClosed, match="in the middle"):
            await client.post(b"{}", {})


async def test_redirects_are_not_followed() -> None:
    server = answering(
        b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/elsewhere\r\nContent-Length: 0\r\n\r\n"
    )
    async with posting(server) as client:
        response = await client.post(b"{}", {})
    assert response.status == 302
    assert server.requests == 1


# --- stale keep-alive connections --------------------------------------------------------


async def test_a_pooled_connection_the_server_dropped_is_retried_once_on_a_new_one() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        if n == 1:  # answers once, then takes the next request and drops it unanswered
            await server.read_request(reader)
            writer.write(NO_CONTENT)
            await writer.drain()
            await server.read_request(reader)
            return
        while await server.read_request(reader):
            writer.write(NO_CONTENT)
            await writer.drain()

    server = await serving(handler)
    async with posting(server) as client:
        assert (await client.post(b"1", {})).status == 204
        assert (await client.post(b"2", {})).status == 204
    assert (server.connections, server.requests) == (2, 3)


async def test_a_reset_is_retried_on_a_pooled_connection_and_fails_a_new_one() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        if n == 1:  # answers once
            await server.read_request(reader)
            writer.write(NO_CONTENT)
            await writer.drain()
        await server.read_request(reader)
        if n == 2:
            writer.write(NO_CONTENT)
            await writer.drain()
            await reader.read()
            return
        sock = writer.get_extra_info("socket")  # then resets the connection (RST, no FIN)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    server = await serving(handler)
    async with posting(server) as client:
        assert (await client.post(b"1", {})).status == 204
        assert (await client.post(b"2", {})).status == 204  # reset on 1, resent on 2
        fresh = client_for(server.url)
        try:
            with pytest.raises(ConnectionClosed, match=r"before answering.*reset") as caught:
                await fresh.post(b"3", {})  # a new connection (3) reset: a failed attempt
            assert caught.value.nothing_read
        finally:
            await fresh.close()
    assert (server.connections, server.requests) == (3, 4)


async def test_a_pooled_connection_closed_while_idle_is_not_used() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server.read_request(reader)
        writer.write(NO_CONTENT)  # keep-alive, then closed at once (a server's idle timeout)
        await writer.drain()

    server = await serving(handler)
    async with posting(server) as client:
        assert (await client.post(b"1", {})).status == 204
        await server.wait_closed(1)
        await asyncio.sleep(0.05)  # the client's side sees the FIN
        assert (await client.post(b"2", {})).status == 204
    assert (server.connections, server.requests) == (2, 2)


async def test_a_new_connection_closed_before_answering_fails_without_a_retry() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server.read_request(reader)

    server = await serving(handler)
    async with posting(server) as client:
        with pytest.raises(ConnectionClosed, match="before answering") as caught:
            await client.post(b"{}", {})
    assert caught.value.nothing_read
    assert (server.connections, server.requests) == (1, 1)


async def test_a_connection_closed_in_the_middle_of_the_headers_is_not_retried() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server.read_request(reader)
        writer.write(NO_CONTENT)
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Le")  # then gone
        await writer.drain()

    server = await serving(handler)
    async with posting(server) as client:
        assert (await client.post(b"1", {})).status == 204
        with pytest.raises(ConnectionClosed, match="in the middle") as caught:
            await client.post(b"2", {})
    assert not caught.value.nothing_read
    assert (server.connections, server.requests) == (1, 2)


async def test_a_connection_closed_in_the_middle_of_the_body_keeps_the_status() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 500 Oops\r\nContent-Length: 100\r\n\r\nhalf")
        await writer.drain()

    server = await serving(handler)
    async with posting(server) as client:
        response = await client.post(b"{}", {})
    assert (response.status, response.body) == (500, b"half")


# --- bad servers and bad requests --------------------------------------------------------


async def test_garbage_is_a_protocol_error() -> None:
    server = answering(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    async with posting(server) as client:
        with pytest.raises(ProtocolError, match="not an HTTP response"):
            await client.post(b"{}", {})


async def test_endless_headers_are_a_protocol_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nX-Long: ")
        for _ in range(100):  # 6.4 MB of one header value
            writer.write(b"z" * 65536)
            await writer.drain()

    server = await serving(handler)
    async with posting(server) as client:
        with pytest.raises(ProtocolError, match="headers longer than"):
            await client.post(b"{}", {})


async def test_slow_headers_time_out() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n")  # and nothing more
        await reader.read()

    server = await serving(handler)
    async with posting(server, timeout=0.3) as client:
        with pytest.raises(TimeoutError):
            await client.post(b"{}", {})
        assert not client._idle  # the stalled connection is not pooled


async def test_closing_the_client_lets_attempts_in_flight_finish_or_time_out() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        request = await server.read_request(reader)
        if request.endswith(b"slow"):
            await asyncio.sleep(0.2)
            writer.write(NO_CONTENT)
            await writer.drain()
        await reader.read()

    server = await serving(handler)
    client = client_for(server.url, timeout=0.5)
    try:
        slow = asyncio.create_task(client.post(b"slow", {}))
        silent = asyncio.create_task(client.post(b"silent", {}))
        await asyncio.sleep(0.05)
        await client.close()
        assert (await slow).status == 204
        with pytest.raises(TimeoutError):
            await silent
        await server.wait_closed(2)  # neither connection is kept
    finally:
        await server.close()


async def test_a_slow_body_after_the_headers_keeps_the_status_at_the_deadline() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 503 Busy\r\nContent-Length: 100\r\nRetry-After: 3\r\n\r\nslo")
        await reader.read()  # the other 97 bytes never come

    server = await serving(handler)
    async with posting(server, timeout=0.3) as client:
        response = await client.post(b"{}", {})
        assert (response.status, response.headers["retry-after"], response.body) == (
            503,
            "3",
            b"slo",
        )
        await server.wait_closed(1)  # the connection is given up, not pooled


async def test_connection_refused_is_a_connect_error() -> None:
    client = client_for(f"http://127.0.0.1:{free_port()}/hook")
    try:
        with pytest.raises(ConnectError, match=r"cannot connect to 127\.0\.0\.1"):
            await client.post(b"{}", {})
    finally:
        await client.close()


async def test_a_header_with_a_line_break_is_refused_before_sending() -> None:
    server = answering(NO_CONTENT)
    async with posting(server) as client:
        with pytest.raises(InvalidHeader, match="ce-subject"):
            await client.post(b"{}", {"ce-subject": "a\r\nX-Injected: 1"})
    assert server.connections == 0


async def test_idle_connections_are_closed_after_keepalive() -> None:
    server = answering(NO_CONTENT)
    async with posting(server, keepalive=0.05) as client:
        assert (await client.post(b"{}", {})).status == 204
        await server.wait_closed(1)
        assert not client._idle


# --- TLS ---------------------------------------------------------------------------------

needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command")


@needs_openssl
async def test_https_verifies_the_certificate_against_the_trusted_cas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pki = make_pki(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(pki.cert, pki.key)
    server = answering(NO_CONTENT, NO_CONTENT)
    await server.start(tls)
    url = server.url.replace("http://127.0.0.1", "https://localhost")

    untrusted = client_for(url)  # the system's CAs: this throwaway CA is not one of them
    try:
        with pytest.raises(ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusted.post(b"{}", {})
    finally:
        await untrusted.close()

    # the default context reads SSL_CERT_FILE: trusting the CA is the operator's choice
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca))
    trusted = client_for(url)
    try:
        for _ in range(2):
            assert (await trusted.post(b"{}", {})).status == 204
    finally:
        await trusted.close()
        await server.close()
    assert server.requests == 2


@needs_openssl
async def test_https_refuses_a_certificate_for_another_name(tmp_path: Path) -> None:
    pki = make_pki(tmp_path, san="DNS:elsewhere.example")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(pki.cert, pki.key)
    server = answering(NO_CONTENT)
    await server.start(tls)
    trusting = ssl.create_default_context(cafile=str(pki.ca))
    client = client_for(server.url.replace("http://", "https://"), ssl_context=trusting)
    try:
        with pytest.raises(ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.post(b"{}", {})
    finally:
        await client.close()
        await server.close()
    assert server.requests == 0


# --- each refusal's exact text, and the bounds to the byte ------------------------------


async def test_each_failure_says_what_happened_in_so_many_words() -> None:
    async def closing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await closed.read_request(reader)

    closed = await serving(closing)
    async with posting(closed) as client:
        with pytest.raises(ConnectionClosed) as before:
            await client.post(b"{}", {})
    assert str(before.value) == "the server closed the connection before answering"

    # part of an answer, down to its first byte, then the connection closed
    for partial in (b"HTTP/1.1 200 OK\r\nContent-Le", b"H"):
        async with posting(cut_short(partial)) as client:
            with pytest.raises(ConnectionClosed) as middle:
                await client.post(b"{}", {})
        expected = "the server closed the connection in the middle of its answer"
        assert str(middle.value) == expected, partial
        assert not middle.value.nothing_read, partial  # never sent again

    upgrading = answering(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    )
    async with posting(upgrading) as client:
        with pytest.raises(ProtocolError) as switched:
            await client.post(b"{}", {})
    assert str(switched.value) == "the server switched protocols"

    async def stalling(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await slow.read_request(reader)
        await reader.read()

    slow = await serving(stalling)
    async with posting(slow, timeout=0.2) as client:
        with pytest.raises(TimeoutError) as late:
            await client.post(b"{}", {})
    assert str(late.value) == "no answer within 0.2 s"


async def test_headers_of_exactly_the_limit_are_read_and_one_byte_more_are_not() -> None:
    def head(size: int) -> bytes:
        start = b"HTTP/1.1 204 No Content\r\nX-Pad: "
        return start + b"z" * (size - len(start) - 2) + b"\r\n"

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        for size in (client_module.HEAD_LIMIT, client_module.HEAD_LIMIT + 1):
            await server.read_request(reader)
            writer.write(head(size))  # the limit's bytes, the end of the headers still to come
            await writer.drain()
            await asyncio.sleep(0.2)
            writer.write(b"\r\n")
            await writer.drain()
        await reader.read()

    server = await serving(handler)
    async with posting(server) as client:
        assert (await client.post(b"1", {})).status == 204
        with pytest.raises(ProtocolError, match="headers longer than 65536 bytes"):
            await client.post(b"2", {})


async def test_the_header_limit_counts_every_read_of_the_headers() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n")
        for n in range(200):  # 200 small reads, 100 KB of headers in all
            writer.write(b"X-%d: %s\r\n" % (n, b"z" * 500))
            await writer.drain()
            await asyncio.sleep(0.002)
        await reader.read()

    server = await serving(handler)
    async with posting(server) as client:
        with pytest.raises(ProtocolError, match="headers longer than"):
            await client.post(b"{}", {})


async def test_a_body_in_reads_after_its_headers_is_read_whole_and_the_connection_kept() -> None:
    answers = [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 600\r\n\r\n", [b"a" * 300, b"b" * 300]),
        (
            b"HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n",
            [b"5\r\nhello\r\n", b"0\r\n\r\n"],
        ),
    ]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        for head, parts in answers:
            await server.read_request(reader)
            writer.write(head)
            for part in parts:  # each part a read of its own
                await writer.drain()
                await asyncio.sleep(0.05)
                writer.write(part)
            await writer.drain()
        await reader.read()

    server = await serving(handler)
    async with posting(server) as client:
        first = await client.post(b"1", {})
        assert (first.status, first.body) == (200, b"a" * 300 + b"b" * 212)  # KEEP_BODY
        second = await client.post(b"2", {})
        assert (second.status, second.body) == (500, b"hello")
    assert server.connections == 1


@pytest.mark.parametrize("size", [client_module.DRAIN_BODY, client_module.DRAIN_BODY + 1])
async def test_a_body_up_to_the_drain_limit_is_read_to_keep_the_connection(size: int) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while await server.read_request(reader):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
            for start in range(0, size, 4096):  # in many reads
                writer.write(b"x" * min(4096, size - start))
                await writer.drain()
                await asyncio.sleep(0.001)

    server = await serving(handler)
    async with posting(server) as client:
        for _ in range(2):
            response = await client.post(b"{}", {})
            assert (response.status, len(response.body)) == (200, 512)
    assert server.connections == (1 if size == client_module.DRAIN_BODY else 2)


async def test_every_stalled_request_times_out_not_only_the_first() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server.read_request(reader)
        await reader.read()

    server = await serving(handler)
    async with posting(server, timeout=0.2) as client:
        for _ in range(3):
            with pytest.raises(TimeoutError, match=r"no answer within 0\.2 s"):
                await asyncio.wait_for(client.post(b"{}", {}), 3)  # not this bound
    assert server.connections == 3


async def test_a_pooled_connection_outlives_its_first_deadline() -> None:
    server = answering(NO_CONTENT, NO_CONTENT)
    async with posting(server, timeout=0.2) as client:
        assert (await client.post(b"1", {})).status == 204
        await asyncio.sleep(0.5)  # past the first request's deadline, well within keepalive
        assert (await client.post(b"2", {})).status == 204
    assert server.connections == 1


async def test_an_idle_connection_is_kept_30_seconds_by_default() -> None:
    """docs/delivery.md: "closed after 30 s unused" (the sweep is due then; not waited for)."""
    server = answering(NO_CONTENT)
    async with posting(server) as client:
        assert (await client.post(b"{}", {})).status == 204
        sweep = client._sweeping
        assert sweep is not None
        # 20 s: a loaded machine; 30.5: uvloop's millisecond clock (31 s fails)
        assert 20.0 < sweep.when() - asyncio.get_running_loop().time() <= 30.5


async def test_a_connection_used_again_is_kept_for_keepalive_from_its_last_use() -> None:
    server = answering(NO_CONTENT, NO_CONTENT, NO_CONTENT)
    async with posting(server, keepalive=0.6) as client:
        assert (await client.post(b"1", {})).status == 204
        await asyncio.sleep(0.35)
        assert (await client.post(b"2", {})).status == 204
        await asyncio.sleep(0.35)  # the first sweep ran: 0.35 s idle, not 0.6 s
        assert (await client.post(b"3", {})).status == 204
        assert server.connections == 1
        await server.wait_closed(1)  # then swept once idle for keepalive
        assert not client._idle


@pytest.mark.parametrize(
    ("url", "port", "start"),
    [
        ("http://example.com/hook", 80, b"POST /hook HTTP/1.1\r\nHost: example.com\r\n"),
        ("https://example.com", 443, b"POST / HTTP/1.1\r\nHost: example.com\r\n"),
        ("http://example.com:80/h", 80, b"POST /h HTTP/1.1\r\nHost: example.com\r\n"),
        ("https://example.com:443/h", 443, b"POST /h HTTP/1.1\r\nHost: example.com\r\n"),
        ("https://example.com:80/h", 80, b"POST /h HTTP/1.1\r\nHost: example.com:80\r\n"),
        ("http://example.com:443/h", 443, b"POST /h HTTP/1.1\r\nHost: example.com:443\r\n"),
        ("http://b\u00fccher.example/", 80, b"POST / HTTP/1.1\r\nHost: xn--bcher-kva.example\r\n"),
        (
            "http://example.com/a b/\u00fc/:@!$&'()*+,;=-._~?x=1 2&y=/?",
            80,
            b"POST /a%20b/%C3%BC/:@!$&'()*+,;=-._~?x=1%202&y=/? HTTP/1.1\r\nHost: example.com\r\n",
        ),
    ],
)
async def test_the_port_host_and_target_each_url_gives(url: str, port: int, start: bytes) -> None:
    client = Client(url, headers={}, timeout=5.0, max_idle=1)
    assert client.port == port
    assert client._prefix == start


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "http:///hook", "example.com"])
async def test_a_url_that_is_not_http_is_refused_by_name(url: str) -> None:
    with pytest.raises(ValueError) as refused:
        Client(url, headers={}, timeout=5.0, max_idle=1)
    assert str(refused.value) == f"expected an http(s) URL, got {url!r}"


async def test_a_deadline_is_watched_every_twentieth_of_the_timeout_at_most_50_ms() -> None:
    assert client_for("http://127.0.0.1:9/", timeout=0.2)._tick == pytest.approx(0.01)
    assert client_for("http://127.0.0.1:9/", timeout=5.0)._tick == 0.05


async def test_it_connects_to_the_urls_host_not_any_local_address() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(NO_CONTENT)
        await writer.drain()
        await reader.read()
        writer.close()

    # not 127.0.0.1 nor ::1, where a connect without an address would go
    server = await asyncio.start_server(answer, "127.0.0.2", 0)
    port = server.sockets[0].getsockname()[1]
    client = client_for(f"http://127.0.0.2:{port}/hook")
    try:
        assert (await client.post(b"{}", {})).status == 204
    finally:
        await client.close()
        server.close()
        await server.wait_closed()


async def test_a_tls_handshake_that_never_ends_is_bounded_by_the_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await reader.read()

    server = await serving(silent)
    client = client_for(server.url.replace("http://", "https://"), timeout=0.3)
    try:
        attempt = asyncio.ensure_future(client.post(b"{}", {}))
        done, _ = await asyncio.wait([attempt], timeout=5)
        assert done, "the handshake was not bounded"
        # the deadline's own error, naming where and how long, not "cannot connect: "
        with pytest.raises(
            TimeoutError, match=r"^no connection to 127\.0\.0\.1:\d+ within 0\.3 s$"
        ):
            attempt.result()
    finally:
        await client.close()
        await server.close()


@pytest.mark.parametrize("host", ["host", "HOST"])
async def test_a_given_host_is_kept_and_framing_headers_are_dropped_in_any_case(host: str) -> None:
    headers = {host: "v.example", "TRANSFER-ENCODING": "chunked", "content-length": "9", "X-A": "1"}
    client = Client("http://example.com/h", headers=headers, timeout=5.0, max_idle=1)
    assert client._prefix == f"POST /h HTTP/1.1\r\n{host}: v.example\r\nX-A: 1\r\n".encode()


async def test_a_user_without_a_password_is_basic_auth_with_an_empty_one() -> None:
    client = Client("http://relay@example.com/h", headers={}, timeout=5.0, max_idle=1)
    assert b"\r\nAuthorization: Basic cmVsYXk6\r\n" in client._prefix  # "relay:"


@pytest.mark.parametrize("breaking", ["x\ny", "x\ry"])
def test_a_lone_line_break_in_a_header_is_refused_by_its_name(breaking: str) -> None:
    with pytest.raises(InvalidHeader) as refused:
        client_module._serialize({"a": "ok", "b": breaking})
    assert str(refused.value) == "header 'b' has a line break in its name or value"


async def test_a_closed_client_refuses_to_post_and_frames_content_length_itself() -> None:
    heads: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        heads.append(await server.read_request(reader))
        writer.write(NO_CONTENT)
        await writer.drain()

    server = await serving(handler)
    async with posting(server) as client:
        assert (await client.post(b"{}", {})).status == 204
        await client.close()
        with pytest.raises(RuntimeError) as refused:
            await client.post(b"{}", {})
    assert str(refused.value) == "the client is closed"
    assert heads[0].endswith(b"\r\nContent-Length: 2\r\n\r\n{}")


@pytest.mark.parametrize("how", ["closed", "closing"])
async def test_a_dead_idle_connection_is_skipped_for_the_next_idle_one(how: str) -> None:
    server = answering(NO_CONTENT, NO_CONTENT)
    async with posting(server) as client:
        answers = await asyncio.gather(client.post(b"1", {}), client.post(b"2", {}))
        assert [a.status for a in answers] == [204, 204]
        assert len(client._idle) == 2
        last = client._idle[-1]
        if how == "closed":
            last.close()
        else:  # closing: the loop has not yet told the connection it is lost
            assert last.transport is not None
            last.transport.close()
        assert (await client.post(b"3", {})).status == 204
        assert server.connections == 2  # the other idle connection, no new one


async def test_a_reused_connection_that_stalls_times_out() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await server.read_request(reader)
        writer.write(NO_CONTENT)
        await writer.drain()
        await reader.read()  # the second request is never answered

    server = await serving(handler)
    async with posting(server, timeout=0.2) as client:
        assert (await client.post(b"1", {})).status == 204
        with pytest.raises(TimeoutError, match=r"no answer within 0\.2 s"):
            await asyncio.wait_for(client.post(b"2", {}), 3)  # not this bound
    assert server.connections == 1


async def test_an_ascii_host_is_sent_as_given_not_through_idna() -> None:
    host = "a" * 64 + ".example"  # a label the idna codec refuses (over 63)
    client = Client(f"http://{host}/", headers={}, timeout=5.0, max_idle=1)
    assert client._prefix == f"POST / HTTP/1.1\r\nHost: {host}\r\n".encode()
