"""A real HTTP subscriber for tests: records what arrives, answers what a test scripts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]
    at: float
    status: int


Script = Callable[["Subscriber", bytes, dict[str, str]], Any]
"""Given the request, return a status, (status, headers), or await something first."""


@dataclass
class Subscriber:
    script: Script | None = None
    delay: float = 0.0
    received: list[Received] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    server: TestServer | None = None
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/hook"))

    def delivered(self) -> list[Received]:
        return [r for r in self.received if 200 <= r.status < 300]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            answer = self.script(self, body, headers) if self.script else 200
            if asyncio.iscoroutine(answer):
                answer = await answer
        finally:
            self.in_flight -= 1
        status, extra = answer if isinstance(answer, tuple) else (answer, {})
        self.received.append(Received(body, headers, time.monotonic(), status))
        async with self._arrived:
            self._arrived.notify_all()
        return web.Response(status=status, headers=extra, text="ok" if status < 300 else "nope")

    async def wait_for(self, predicate: Callable[[Subscriber], bool], within: float = 20.0) -> None:
        async with asyncio.timeout(within), self._arrived:
            await self._arrived.wait_for(lambda: predicate(self))

    async def start(self) -> Subscriber:
        app = web.Application()
        app.router.add_post("/hook", self.handle)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()
