"""Slow-header (slowloris) defence: a connection must send a complete request head in time.

aiohttp has no timeout for reading a request's headers, so a client could hold a
connection open forever by sending them a byte at a time. The guard closes any
connection that has not started a request within ``header_timeout`` of connecting or of
finishing its previous one (which also bounds idle keep-alive connections). The timeout
is read from the live settings at each sweep: a reload changes it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import structlog
from aiohttp import web

from relay.live import Current

log = structlog.get_logger("relay.ingress")


class ConnectionGuard:
    def __init__(self, settings: Current[Any]) -> None:
        self.settings = settings
        self._active: dict[Any, int] = {}
        self._since: dict[Any, float] = {}

    def started(self, protocol: Any) -> None:
        self._active[protocol] = self._active.get(protocol, 0) + 1

    def finished(self, protocol: Any) -> None:
        left = self._active.get(protocol, 1) - 1
        if left > 0:
            self._active[protocol] = left
        else:
            self._active.pop(protocol, None)
        self._since[protocol] = time.monotonic()

    def sweep(self, connections: list[Any], now: float) -> int:
        """Close connections silent past the timeout; returns how many were closed."""
        closed = 0
        timeout = self.settings.live.header_timeout
        alive = set(connections)
        for gone in [p for p in self._since if p not in alive]:
            del self._since[gone]
        for protocol in connections:
            if protocol in self._active:
                continue
            since = self._since.setdefault(protocol, now)
            if now - since > timeout:
                protocol.force_close()
                self._since.pop(protocol, None)
                closed += 1
        return closed

    async def watch(self, connections: Callable[[], list[Any]]) -> None:
        """Sweep ``connections()`` (protocols with ``force_close()``) now and then."""
        while True:
            await asyncio.sleep(min(1.0, self.settings.live.header_timeout / 2))
            closed = self.sweep(connections(), time.monotonic())
            if closed:
                log.info("slow_connections_closed", count=closed)


GUARD = web.AppKey("connection_guard", ConnectionGuard)
