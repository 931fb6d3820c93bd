"""The lean HTTP server for the hook route: an asyncio Protocol and httptools.

aiohttp's per-request machinery (request and response objects, a handler task, routing,
middleware) costs more CPU than the rest of a hook request's handling. This server parses
each connection with httptools and serves ``POST /v1/hooks/{source}[/{kind}]`` itself,
through the same :func:`~relay.ingress.hooks.answer_hook` as aiohttp's handler. Any other
request (another path or method, an upgrade, a compressed body, a malformed or oversized
head) hands the connection to aiohttp for good, with every byte received from that
request's first byte on, so aiohttp answers it exactly as it would have.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any, cast

import httptools
import structlog
from aiohttp import web

from relay.ingress.guard import GUARD
from relay.ingress.hooks import answer_hook
from relay.ingress.middleware import request_id
from relay.ingress.request import Answer, HookRequest
from relay.ingress.responses import error_answer
from relay.ingress.state import INGRESS
from relay.ingress.wire import (
    CONTINUE,
    LONG_LINE,
    MAX_HEAD,
    Exchange,
    LeanBody,
    encode,
    headers_of,
    hook_route,
    message_start,
    unservable,
)

log = structlog.get_logger("relay.ingress")


class LeanServer:
    """The protocol factory for the hook listener (``loop.create_server(lean, ...)``)."""

    def __init__(self, app: web.Application, server: web.Server) -> None:
        self.state = app[INGRESS]
        self.guard = app.get(GUARD)
        self.server = server
        """aiohttp's protocol factory: the connections the lean server does not serve."""
        self.connections: set[LeanConnection] = set()
        self.closing = False
        self._none_left = asyncio.Event()

    def __call__(self) -> LeanConnection:
        return LeanConnection(self)

    def protocols(self) -> list[Any]:
        """Every open connection, lean or aiohttp's (for the slow-header guard)."""
        return [*self.server.connections, *self.connections]

    def forget(self, connection: LeanConnection) -> None:
        self.connections.discard(connection)
        if not self.connections:
            self._none_left.set()

    async def shutdown(self, within: float) -> None:
        """After the listeners closed: idle connections now, the rest once their requests
        are answered; past ``within`` seconds, whatever is left is cut."""
        self.closing = True
        for connection in list(self.connections):
            connection.close_when_idle()
        if self.connections:
            self._none_left.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(within):
                    await self._none_left.wait()
        for connection in list(self.connections):
            connection.abort()


class LeanConnection(asyncio.Protocol):
    def __init__(self, lean: LeanServer) -> None:
        self._lean = lean
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._peer: str | None = None
        # The bytes from a request's first byte on (_done whole requests first), so the
        # connection can change hands; _lost: a long lean body let them go.
        self._raw = bytearray()
        self._done = 0
        self._lost = False
        self._in_message = False
        self._head_done = False
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._current: Exchange | None = None
        self._queue: deque[Exchange] = deque()
        self._task: asyncio.Task[None] | None = None
        self._switch = False
        self._handover: bytes | None = None
        self._closing = False
        self._closed = False
        self._paused = False
        self._backlogged = False  # reading paused: a request waits behind the one answered
        self._drained: asyncio.Future[None] | None = None

    # --- the transport's side ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        peer = transport.get_extra_info("peername")
        self._peer = peer[0] if isinstance(peer, tuple) else None
        self._lean.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._current is not None:
            self._current.body.broken()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        if self._task is None:  # else the requests in progress finish first
            self._lean.forget(self)

    def eof_received(self) -> bool | None:
        if self._current is not None:
            self._current.body.broken()
        if self._queue:  # answer what came, then close
            self._closing = True
            return True
        return None

    def pause_writing(self) -> None:
        self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    def data_received(self, data: bytes) -> None:
        if not self._lost:
            self._raw += data
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError:  # a bug here, not the sender's doing
            log.exception("lean_parser_failed")
            if self._current is not None or self._switch:
                self._give_up_on_body()
                return
            self._switch = True
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            if self._current is not None:  # inside a lean body (a bad chunk): 400, close
                self._give_up_on_body()
                return
            self._switch = True  # malformed, or an upgrade: aiohttp's to answer
        if self._switch:
            self._hand_over_later()
        elif not self._in_message:
            self._raw.clear()
            self._done = 0
            self._lost = False
        elif len(self._raw) > MAX_HEAD:
            if self._done:
                del self._raw[: message_start(bytes(self._raw), self._done)]
                self._done = 0
            if len(self._raw) <= MAX_HEAD:
                return
            if not self._head_done:
                self._switch = True
                self._hand_over_later()
            else:  # a lean body: its bytes are in its LeanBody
                self._raw.clear()
                self._lost = True

    def _give_up_on_body(self) -> None:
        """The body in progress cannot be read on: 400 for it, then close."""
        if self._current is not None:
            self._current.body.broken()
            self._current = None
        self.close_when_idle()

    # --- the parser's callbacks ---------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._switch:
            return
        self._in_message = True
        self._head_done = False
        self._url = b""
        self._headers = []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self._switch:
            return
        self._head_done = True
        exchange = self._exchange()
        if exchange is None:
            self._switch = True
            return
        self._current = exchange
        self._queue.append(exchange)
        if self._lean.guard is not None:
            self._lean.guard.started(self)
        if len(self._queue) > 1 and not self._backlogged and self._transport is not None:
            # answered one at a time: a sender that pipelines without reading the answers
            # is read no further than one request ahead (bounded memory, as aiohttp does)
            self._backlogged = True
            self._transport.pause_reading()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._work())

    def on_body(self, body: bytes) -> None:
        if self._current is not None:
            self._current.body.feed(body)

    def on_message_complete(self) -> None:
        if self._switch:
            return
        self._in_message = False
        self._done += 1
        if self._current is not None:
            self._current.body.finish()
            self._current = None

    def _exchange(self) -> Exchange | None:
        """The request just parsed, if the lean server serves it."""
        parser = self._parser
        if parser.get_method() != b"POST":
            return None
        if len(self._url) > LONG_LINE or any(
            len(name) + len(value) > LONG_LINE for name, value in self._headers
        ):
            return None
        route = hook_route(self._url)
        if route is None:
            return None
        version = parser.get_http_version()
        headers = headers_of(self._headers)
        if unservable(version, headers) is not None:
            return None
        length = headers.get("Content-Length")
        settings = self._lean.state.current.live.ingress
        exchange: Exchange
        body = LeanBody(
            int(length) if length is not None else None,
            settings.max_body_bytes,
            (lambda: self._continue(exchange)) if "Expect" in headers else None,
        )
        peer = self._peer
        request = HookRequest(
            source=route.source,
            kind=route.kind,
            headers=headers,
            query=route.query,
            peer=lambda: peer,
            request_id=request_id(headers),
            body=body,
        )
        exchange = Exchange(request, body, route.path, version, parser.should_keep_alive())
        exchange.asked = "Expect" in headers
        return exchange

    def _continue(self, exchange: Exchange) -> None:
        exchange.asked = False
        if not self._closed and self._transport is not None:
            self._transport.write(CONTINUE)

    # --- answering ----------------------------------------------------------------------

    async def _work(self) -> None:
        """Answer the queued requests in order, one at a time."""
        lean = self._lean
        served = 0
        try:
            while self._queue:
                exchange = self._queue[0]
                if served:  # a context of its own for each request's log lines
                    structlog.contextvars.clear_contextvars()
                served += 1
                answer = await self._answer(exchange)
                body = exchange.body
                keep = exchange.keep_alive and not self._closing and not lean.closing
                if not body.complete() and (exchange.asked or answer.status == 408):
                    keep = False  # the sender will not send it, or is too slow to wait for
                self._write(encode(answer, exchange.request.request_id, exchange.version, keep))
                if self._drained is not None:  # a sender that reads no answers is dropped
                    try:
                        async with asyncio.timeout(lean.state.current.live.ingress.body_timeout):
                            await self._drained
                    except TimeoutError:
                        self._closing = True
                        if self._transport is not None:
                            self._transport.abort()
                        return
                if keep and not body.done:  # read, and drop, the rest before the next one
                    keep = await body.finished(lean.state.current.live.ingress.body_timeout)
                self._queue.popleft()
                if lean.guard is not None:
                    lean.guard.finished(self)
                if self._backlogged and len(self._queue) <= 1:
                    self._backlogged = False
                    if not self._paused and not self._closed and self._transport is not None:
                        self._transport.resume_reading()
                if not keep:
                    self._close()
                    return
        finally:
            self._task = None
            # requests left unanswered by a close: the guard no longer counts them active
            if (guard := lean.guard) is not None:
                for _ in self._queue:
                    guard.finished(self)
            self._queue.clear()
            if self._closed:
                lean.forget(self)
        if self._handover is not None:
            self._hand_over()
        elif self._closing or lean.closing:
            self.close_when_idle()

    async def _answer(self, exchange: Exchange) -> Answer:
        request = exchange.request
        if request.source in self._lean.state.current.live.ingress.sources:
            structlog.contextvars.bind_contextvars(
                request_id=request.request_id, source=request.source
            )
        else:  # an unknown name is anyone's text: not in the context
            structlog.contextvars.bind_contextvars(request_id=request.request_id)
        try:
            return (await answer_hook(request, self._lean.state))[1]
        except Exception:
            log.exception("unhandled_error", path=exchange.path)
            return error_answer(500, "internal_error", "unexpected error; the body was not lost")

    def _write(self, data: bytes) -> None:
        if not self._closed and self._transport is not None:
            self._transport.write(data)

    def _close(self) -> None:
        self._closing = True
        if self._transport is not None:
            self._transport.close()

    # --- ending, and changing hands -----------------------------------------------------

    def close_when_idle(self) -> None:
        self._closing = True
        if self._task is None:
            self._close()

    def force_close(self) -> None:
        """The slow-header guard's: the head did not come in time."""
        self._close()

    def abort(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._transport is not None:
            self._transport.abort()
        self._lean.forget(self)

    def _hand_over_later(self) -> None:
        """aiohttp serves the request in progress, once the lean ones before it are answered."""
        if self._lost or self._lean.closing:  # nowhere to start from, or no aiohttp any more
            self.close_when_idle()
            return
        raw = bytes(self._raw)
        self._handover = raw[message_start(raw, self._done) :]
        self._raw.clear()
        if self._task is None:
            self._hand_over()
        elif not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()

    def _hand_over(self) -> None:
        transport, data = self._transport, self._handover
        assert transport is not None and data is not None
        self._lean.forget(self)
        if self._closed:
            return
        if self._paused or self._backlogged:
            transport.resume_reading()
        handler = self._lean.server()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        handler.data_received(data)
