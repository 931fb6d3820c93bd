"""A lean HTTP/1.1 client for deliveries: POST to one URL over pooled keep-alive connections.

A delivery only POSTs a body with headers and reads the status, the headers and the first
bytes of the answer; aiohttp's client, doing far more, was about two-thirds of a delivery's
CPU time. This one is an asyncio Protocol per connection, httptools (llhttp, the parser
uvicorn uses) to read responses, a LIFO pool of idle connections closed after
``keepalive`` seconds, and ``ssl`` for https (the default context: certificates and host
names verified against the system's CAs, as aiohttp did). No cookies, no redirects, no
proxies, no compression: a subscriber's answer is taken as it comes.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections import deque
from collections.abc import Mapping
from typing import cast
from urllib.parse import quote, unquote, urlsplit

import httptools

KEEP_BODY = 512
"""Bytes of a response body kept (the excerpt a failed attempt reports)."""
DRAIN_BODY = 64 * 1024
"""Bytes of a body read to reuse the connection; a longer body closes it instead."""
HEAD_LIMIT = 64 * 1024
"""Bytes of status line and headers accepted before the headers must be complete."""


class HttpError(Exception):
    """The exchange got no usable answer (a retry may)."""


class ConnectError(HttpError):
    """The connection (TCP or TLS) could not be made."""


class ConnectionClosed(HttpError):
    """The server closed the connection before its answer's headers were complete."""

    def __init__(self, message: str, *, nothing_read: bool) -> None:
        super().__init__(message)
        self.nothing_read = nothing_read


class ProtocolError(HttpError):
    """The server's bytes are not an HTTP/1.x response relay can read."""


class InvalidHeader(ValueError):
    """A request header that cannot be sent (a line break in it): retrying cannot help."""


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        """Names in lower case; a repeated header keeps its first value."""
        self.body = body
        """The first :data:`KEEP_BODY` bytes."""


class _Connection(asyncio.Protocol):
    """One connection: one request at a time, its response parsed as it arrives."""

    def __init__(self, keep: int) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reusable = False
        """The last response was read whole and the server keeps the connection alive."""
        self.idle_since = 0.0
        self.deadline = 0.0
        self._loop = asyncio.get_running_loop()
        self._keep = keep
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Response] | None = None
        self._status = 0
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._kept = 0
        self._drained = 0
        self._head_bytes = 0
        self._headers_done = False
        self._until_close = False

    # --- the request ----------------------------------------------------------------------

    def request(self, head: bytes, body: bytes) -> asyncio.Future[Response]:
        transport = self.transport
        assert transport is not None and self._waiter is None
        self._waiter = waiter = self._loop.create_future()
        self._status, self._headers, self._body = 0, {}, []
        self._kept = self._drained = self._head_bytes = 0
        self._headers_done = self.reusable = self._until_close = False
        transport.write(head + body)
        return waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _finish(self, complete: bool) -> None:
        waiter, self._waiter = self._waiter, None
        body = b"".join(self._body)
        self._body = []
        if complete:
            self.reusable = self._parser.should_keep_alive()
        if waiter is not None and not waiter.done():
            waiter.set_result(Response(self._status, self._headers, body))

    def expire(self, timeout: float) -> None:
        """The deadline passed: an answer whose headers are in stands (the rest of its body
        is given up), anything short of that is a timeout."""
        if self._headers_done:
            self._finish(complete=False)
            self.close()
        else:
            self.fail(TimeoutError(f"no answer within {timeout:g} s"))

    def fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.close()

    # --- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._waiter is None:
            return
        if self._headers_done:  # the status stands; only the rest of the body is missing
            self._finish(complete=False)
            return
        read = self._head_bytes > 0
        detail = f": {exc}" if exc is not None else ""
        self.fail(
            ConnectionClosed(
                "the server closed the connection "
                + ("in the middle of its answer" if read else "before answering")
                + detail,
                nothing_read=not read,
            )
        )

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:  # nothing asked: a server talking out of turn
            self.close()
            return
        if not self._headers_done:
            self._head_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.fail(ProtocolError("the server switched protocols"))
            return
        except httptools.HttpParserError as exc:
            self.fail(ProtocolError(f"not an HTTP response: {exc}"))
            return
        if self._waiter is None:
            return
        if self._until_close:  # no end but the connection's: the status and this read do
            self._finish(complete=False)
            self.close()
        # checked after parsing: one read can hold the headers and some of the body
        elif not self._headers_done and self._head_bytes > HEAD_LIMIT:
            self.fail(ProtocolError(f"response headers longer than {HEAD_LIMIT} bytes"))

    def eof_received(self) -> bool:
        return False  # half-closed by the server: close our side too

    # --- httptools callbacks --------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))

    def on_headers_complete(self) -> None:
        status = self._status = self._parser.get_status_code()
        self._headers_done = status >= 200  # 1xx: an interim answer, the real one follows
        headers = self._headers
        # A body delimited only by the connection's end is not waited for (a server that
        # never closes would run every attempt into the timeout): what came with the
        # headers is kept, the connection closed.
        self._until_close = (
            status >= 200
            and status not in (204, 304)
            and "content-length" not in headers
            and "transfer-encoding" not in headers
        )

    def on_body(self, body: bytes) -> None:
        if self._waiter is None:
            return
        if self._kept < self._keep:
            part = body[: self._keep - self._kept]
            self._body.append(part)
            self._kept += len(part)
        self._drained += len(body)
        if self._drained > DRAIN_BODY:  # not worth reading to keep the connection
            self._finish(complete=False)
            self.close()

    def on_message_complete(self) -> None:
        if self._waiter is None:
            return
        if self._status < 200:
            self._headers = {}
            return
        self._finish(complete=True)


class Client:
    """POSTs to one URL over at most ``max_idle`` idle keep-alive connections (made in, and
    used from, one event loop: the one running when it is made).

    ``timeout`` bounds each :meth:`post`: connecting (TLS included), sending, and reading
    the answer. A reused connection the server has closed meanwhile (nothing of the answer
    read) is retried once on a new connection, within the same timeout.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str],
        timeout: float,
        max_idle: int,
        keepalive: float = 30.0,
        keep_body: int = KEEP_BODY,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http(s) URL, got {url!r}")
        tls = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if tls else 80)
        self._ssl = (ssl_context or ssl.create_default_context()) if tls else None
        self._timeout = timeout
        self._max_idle = max_idle
        self._keepalive = keepalive
        self._keep = keep_body
        self._idle: deque[_Connection] = deque()
        self._sweeping: asyncio.TimerHandle | None = None
        self._busy: set[_Connection] = set()
        self._watching: asyncio.TimerHandle | None = None
        self._tick = min(0.05, timeout / 20)
        self._closed = False
        self._loop = asyncio.get_running_loop()
        host = self.host.encode("idna").decode() if not self.host.isascii() else self.host
        if ":" in host:
            host = f"[{host}]"
        if parts.port is not None and parts.port != (443 if tls else 80):
            host = f"{host}:{parts.port}"
        target = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
        if parts.query:
            target += "?" + quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
        # the client frames each request itself; a Host header given is kept (virtual hosts)
        fixed = {} if any(name.lower() == "host" for name in headers) else {"Host": host}
        for name, value in headers.items():
            if name.lower() not in ("content-length", "transfer-encoding"):
                fixed[name] = value
        if parts.username is not None:  # as aiohttp did: user:password@ is Basic auth
            basic = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            fixed["Authorization"] = "Basic " + base64.b64encode(basic.encode()).decode()
        self._prefix = f"POST {target} HTTP/1.1\r\n".encode() + _serialize(fixed)

    async def post(self, body: bytes, headers: Mapping[str, str]) -> Response:
        """One POST; raises :class:`HttpError`, ``TimeoutError`` or :class:`InvalidHeader`."""
        if self._closed:
            raise RuntimeError("the client is closed")
        head = b"%s%sContent-Length: %d\r\n\r\n" % (self._prefix, _serialize(headers), len(body))
        deadline = self._loop.time() + self._timeout
        idle = self._idle
        while idle:
            connection = idle.pop()
            if connection.closed or connection.transport is None:
                continue
            if connection.transport.is_closing():  # closing, not yet told it is lost
                connection.close()
                continue
            try:
                return await self._exchange(connection, head, body, deadline)
            except ConnectionClosed as exc:
                if not exc.nothing_read:
                    raise
                break  # a stale keep-alive connection: once more, on a new one
        connection = await self._connect(deadline)
        return await self._exchange(connection, head, body, deadline)

    async def close(self) -> None:
        self._closed = True
        if self._sweeping is not None:
            self._sweeping.cancel()
            self._sweeping = None
        # attempts still in flight finish (or time out: the deadline timer runs on while
        # any is busy), then their connections are closed
        while self._idle:
            self._idle.pop().close()

    async def _connect(self, deadline: float) -> _Connection:
        keep = self._keep
        try:
            async with asyncio.timeout_at(deadline):
                _, connection = await self._loop.create_connection(
                    lambda: _Connection(keep),
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self._ssl is not None else None,
                )
        except TimeoutError:  # an OSError too, but the deadline's: say so, not "cannot connect: "
            raise TimeoutError(
                f"no connection to {self.host}:{self.port} within {self._timeout:g} s"
            ) from None
        except OSError as exc:  # refused, unreachable, no such host, TLS (ssl.SSLError)
            raise ConnectError(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        return connection

    async def _exchange(
        self, connection: _Connection, head: bytes, body: bytes, deadline: float
    ) -> Response:
        connection.deadline = deadline
        self._busy.add(connection)
        if self._watching is None:
            self._watch_later()
        try:
            response = await connection.request(head, body)
        except BaseException:  # failed, timed out or cancelled: the connection is unusable
            connection.close()
            raise
        finally:
            self._busy.discard(connection)
        reuse = connection.reusable and not connection.closed and not self._closed
        if reuse and len(self._idle) < self._max_idle:
            connection.idle_since = self._loop.time()
            self._idle.append(connection)
            if self._sweeping is None:
                self._sweep_later()
        else:
            connection.close()
        return response

    # Deadlines are checked by one timer ticking while requests are in flight, not by a
    # timer per request (asyncio.timeout's was ~7% of a delivery): a request times out
    # within a tick (timeout / 20, at most 50 ms) after its deadline.

    def _watch_later(self) -> None:
        self._watching = self._loop.call_later(self._tick, self._watch)

    def _watch(self) -> None:
        self._watching = None
        now = self._loop.time()
        for connection in [c for c in self._busy if c.deadline <= now]:
            self._busy.discard(connection)
            connection.expire(self._timeout)
        if self._busy:
            self._watch_later()

    def _sweep_later(self) -> None:
        self._sweeping = self._loop.call_later(self._keepalive, self._sweep)

    def _sweep(self) -> None:
        """Close the connections idle for ``keepalive`` seconds (the oldest are leftmost)."""
        self._sweeping = None
        expired = self._loop.time() - self._keepalive
        idle = self._idle
        while idle and (idle[0].closed or idle[0].idle_since <= expired):
            idle.popleft().close()
        if idle:
            self._sweep_later()


def _serialize(headers: Mapping[str, str]) -> bytes:
    if not headers:
        return b""
    text = "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
    if text.count("\n") != len(headers) or text.count("\r") != len(headers):
        bad = next(n for n, v in headers.items() if "\r" in n + v or "\n" in n + v)
        raise InvalidHeader(f"header {bad!r} has a line break in its name or value")
    return text.encode()
