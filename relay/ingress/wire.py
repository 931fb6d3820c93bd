"""The lean server's HTTP/1.1 pieces: which requests it serves, bodies, answers as bytes.

Everything here is a pure function of bytes (or a small buffer) so it can be tested
without a connection; :mod:`relay.ingress.lean` puts it on one.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import parse_qsl

import httptools
import msgspec
from multidict import CIMultiDict, MultiDict, MultiDictProxy

from relay.ingress.body import BodyTooLarge, BrokenBody
from relay.ingress.request import Answer, HookRequest

_SEGMENT = rb"[^/{}%?#\x00-\x20\x7f-\xff]+"
_HOOK_PATH = re.compile(rb"/v1/hooks/(" + _SEGMENT + rb")(?:/(" + _SEGMENT + rb"))?")
_NO_QUERY: MultiDictProxy[str] = MultiDictProxy(MultiDict())

MAX_HEAD = 64 * 1024
"""Bytes kept for a request head still coming in; past it aiohttp gets the connection
(and refuses the head: its own limit is 8 KiB a line)."""
LONG_LINE = 8000
"""A request line or header about as long as aiohttp allows (8190 bytes): aiohttp's to
judge, and to refuse with its ``LineTooLong`` when it is over."""


class Route:
    """A hook URL as the lean server serves it."""

    __slots__ = ("kind", "path", "query", "source")

    def __init__(
        self, path: str, source: str, kind: str | None, query: MultiDictProxy[str]
    ) -> None:
        self.path = path
        self.source = source
        self.kind = kind
        self.query = query


ROUTES_HELD = 256
"""Hook URLs kept once read: a sender posts to the same URL (its token in the query) every
time, so the match, the decoding and the query's parse are done once a URL, not a request.
Cleared whole when full, so strangers' URLs cost a re-read, never memory."""
_routes: dict[bytes, Route] = {}


def hook_route(url: bytes) -> Route | None:
    """``/v1/hooks/{source}[/{kind}]`` with an optional query; None for any other target
    and for the ones aiohttp would read differently (percent-escapes, dot segments,
    non-ASCII): those are aiohttp's to answer."""
    route = _routes.get(url)
    if route is None:
        route = _read_route(url)
        if route is not None:
            if len(_routes) >= ROUTES_HELD:
                _routes.clear()
            _routes[url] = route
    return route


def _read_route(url: bytes) -> Route | None:
    path, _, query = url.partition(b"?")
    match = _HOOK_PATH.fullmatch(path)
    if match is None:
        return None
    source, kind = match.group(1), match.group(2)
    if source in (b".", b"..") or kind in (b".", b".."):
        return None
    return Route(
        path.decode(),
        source.decode(),
        kind.decode() if kind is not None else None,
        # read-only: one Route serves every request to its URL
        MultiDictProxy(
            MultiDict(parse_qsl(query.decode("utf-8", "surrogateescape"), keep_blank_values=True))
        )
        if query
        else _NO_QUERY,
    )


def headers_of(raw: list[tuple[bytes, bytes]]) -> CIMultiDict[str]:
    # as aiohttp decodes them: undecodable bytes kept as surrogates
    return CIMultiDict(
        [
            (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
            for name, value in raw
        ]
    )


def unservable(version: str, headers: CIMultiDict[str]) -> str | None:
    """Why aiohttp, not the lean server, must serve a hook request with these headers
    (None: the lean server serves it). aiohttp reads what relay has no reason to
    re-implement: upgrades, compressed bodies, unusual framing and expectations."""
    if version not in ("1.0", "1.1"):
        return "version"
    if version == "1.1" and "Host" not in headers:
        return "no host"  # aiohttp refuses it (400)
    if "Upgrade" in headers:
        return "upgrade"
    encoding = headers.get("Content-Encoding")
    if encoding is not None and encoding.strip().lower() not in ("", "identity"):
        return "content-encoding"  # decompressed, and bounded, by aiohttp
    framing = headers.get("Transfer-Encoding")
    if framing is not None and framing.strip().lower() != "chunked":
        return "transfer-encoding"
    expect = headers.get("Expect")
    if expect is not None and (version != "1.1" or expect.strip().lower() != "100-continue"):
        return "expect"
    return None


class LeanBody:
    """A body as the parser hands it over; bytes past ``limit`` are dropped, not kept."""

    __slots__ = ("_ask", "_chunks", "_limit", "_waiter", "declared", "done", "lost", "over", "size")

    def __init__(
        self, declared: int | None, limit: int, ask: Callable[[], None] | None = None
    ) -> None:
        self.declared = declared
        self._limit = limit
        self._ask = ask
        """Called once before waiting for the body (``Expect: 100-continue``)."""
        self._chunks: list[bytes] = []
        self.size = 0
        self.done = False
        self.over = False
        self.lost = False
        self._waiter: asyncio.Future[None] | None = None

    def feed(self, data: bytes) -> None:
        self.size += len(data)
        if self.over:
            return
        if self.size > self._limit:
            self.over = True
            self._chunks.clear()
            self._wake()
        else:
            self._chunks.append(data)

    def finish(self) -> None:
        self.done = True
        self._wake()

    def broken(self) -> None:
        if not self.done:
            self.lost = True
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def complete(self) -> bool:
        return self.done or self.over or self.lost

    def take(self, limit: int) -> bytes:
        declared = self.declared
        if declared is not None and declared > limit:
            raise BodyTooLarge(f"body of {declared} bytes is over the limit of {limit}")
        if self.over or self.size > limit:
            raise BodyTooLarge(f"body is over the limit of {limit} bytes")
        if self.lost:
            raise BrokenBody("the sender closed the connection before the body was complete")
        chunks = self._chunks
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def read(self, limit: int) -> bytes:
        declared = self.declared
        if declared is not None and declared > limit:  # refused before asking for it
            raise BodyTooLarge(f"body of {declared} bytes is over the limit of {limit}")
        if not self.complete():
            if self._ask is not None:
                self._ask()
                self._ask = None
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self.take(limit)

    async def finished(self, within: float) -> bool:
        """Wait (the rest discarded) until the parser has seen the whole body."""
        if not self.done and not self.lost:
            self.over = True  # nobody reads it any more
            self._chunks.clear()
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(within):
                    while not self.done and not self.lost:
                        await self._waiter
                        self._waiter = asyncio.get_running_loop().create_future()
            except TimeoutError:
                return False
        return self.done


_REASONS = {status.value: status.phrase for status in HTTPStatus}
_date = [0, ""]


def http_date() -> str:
    """The ``Date`` header, formatted once a second."""
    now = int(time.time())
    if now != _date[0]:
        _date[0], _date[1] = now, formatdate(now, usegmt=True)
    return str(_date[1])


def encode(answer: Answer, request_id: str, version: str, keep_alive: bool) -> bytes:
    """The answer as aiohttp writes it, header for header (its order, ``Server: relay``)."""
    extra = (
        "".join([f"{name}: {value}\r\n" for name, value in answer.headers.items()])
        if answer.headers
        else ""
    )
    if version == "1.0":
        connection = "Connection: keep-alive\r\n" if keep_alive else ""
    else:
        connection = "" if keep_alive else "Connection: close\r\n"
    head = (
        f"HTTP/{version} {answer.status} {_REASONS.get(answer.status, '')}\r\n{extra}"
        f"Content-Type: application/json\r\nX-Request-Id: {request_id}\r\n"
        f"Content-Length: {len(answer.body)}\r\nDate: {http_date()}\r\nServer: relay\r\n"
        f"{connection}\r\n"
    )
    return head.encode("latin-1") + answer.body


CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class _Completions:
    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def on_message_complete(self) -> None:
        self.count += 1


def completions(data: bytes) -> int:
    """How many whole requests ``data`` (from a request's first byte) holds."""
    counter = _Completions()
    # what follows the whole ones is not this function's to judge
    with contextlib.suppress(httptools.HttpParserError, httptools.HttpParserUpgrade):
        httptools.HttpRequestParser(counter).feed_data(data)
    return counter.count


def message_start(raw: bytes, done: int) -> int:
    """Where, in ``raw`` (bytes from a request's first byte), the request after the first
    ``done`` whole ones starts: the parser says how many requests ended, not where, so
    the shortest prefix holding ``done`` of them is searched (in log2(len) parses; only
    when a pipelined connection changes hands)."""
    if done == 0:
        return 0
    low, high = 1, len(raw)
    while low < high:
        middle = (low + high) // 2
        if completions(raw[:middle]) >= done:
            high = middle
        else:
            low = middle + 1
    return low


class Exchange(msgspec.Struct):
    """One lean request and what its connection needs to answer it."""

    request: HookRequest
    body: LeanBody
    path: str
    version: str
    keep_alive: bool
    asked: bool = False
    """``Expect: 100-continue`` and not yet told to continue."""
