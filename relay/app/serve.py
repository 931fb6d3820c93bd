"""Running the application: the event loop, listen, guard connections, shut down gracefully.

The hook port is served by the lean server (:mod:`relay.ingress.lean`), which hands
every request but a hook to aiohttp, unless ``listen.server: aiohttp`` (or tracing) says
aiohttp serves it all. On SIGTERM or SIGINT: the listener closes (readiness fails),
requests in flight finish within the grace period, then delivery commits its watermarks
and the bus flushes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Sequence

import structlog
from aiohttp import web

from relay.app import heap
from relay.ingress import INGRESS, LEAN
from relay.ingress.guard import GUARD
from relay.ingress.lean import LeanServer
from relay.preflight import listen_problem

log = structlog.get_logger("relay.serve")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop's loop when it is installed (``pip install 'relay[fast]'``), asyncio's otherwise."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


class ListenError(Exception):
    """The listener could not bind, phrased for the operator."""


AdminListener = tuple[web.Application, str, int]

BACKLOG = 128  # aiohttp's


def bind(host: str, port: int, key: str = "listen") -> list[socket.socket]:
    """The listening sockets for ``host:port``, bound here once, as asyncio's server would
    bind them, and for this relay alone: ``SO_REUSEADDR`` (a restart need not wait out
    TIME_WAIT) but not ``SO_REUSEPORT``, so another process asking for the port is refused
    (``relay serve --workers N``: the supervisor holds them, the workers inherit them)."""
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {host}:{port} ({key}): {exc.strerror}") from exc
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # as asyncio: "::" is IPv6 only, 0.0.0.0 apart
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            # two binds with SO_REUSEADDR can both succeed until one listens: the loser's
            # listen() is refused
            sock.bind(address)
            sock.listen(BACKLOG)
            sock.setblocking(False)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise ListenError(listen_problem(exc, host, port, key)) from exc
    return sockets


class Listener:
    """The hook port of a set-up runner: aiohttp's sites, or the lean server in front."""

    def __init__(self, app: web.Application, runner: web.AppRunner) -> None:
        assert runner.server is not None, "runner.setup() first"
        self._app = app
        self._runner = runner
        self._server = runner.server
        self.lean = LeanServer(app, runner.server) if app.get(LEAN) else None
        self._servers: list[asyncio.Server] = []

    async def start(self, host: str, port: int, sockets: Sequence[socket.socket] = ()) -> None:
        """On ``sockets`` if any, else on ``host:port``; raises OSError."""
        if self.lean is None:
            sites: list[web.BaseSite] = [web.SockSite(self._runner, sock) for sock in sockets]
            for site in sites or [web.TCPSite(self._runner, host, port)]:
                await site.start()
            return
        loop = asyncio.get_running_loop()
        for sock in sockets:
            self._servers.append(await loop.create_server(self.lean, sock=sock, backlog=BACKLOG))
        if not sockets:
            self._servers.append(
                await loop.create_server(self.lean, host or None, port, backlog=BACKLOG)
            )

    @property
    def sockets(self) -> list[socket.socket]:
        return [sock for server in self._servers for sock in server.sockets]

    def protocols(self) -> list[object]:
        """The open connections, for the slow-header guard."""
        return self.lean.protocols() if self.lean is not None else [*self._server.connections]

    async def stop(self, within: float) -> None:
        """Stop listening; requests in flight get ``within`` seconds, on either server
        (aiohttp's sites stop in ``runner.cleanup()``, which waits for its own)."""
        if self.lean is None:
            return
        for server in self._servers:
            server.close()
        self._app[INGRESS].accepting = False
        self._server.pre_shutdown()  # aiohttp's idle keep-alives close now, as in cleanup
        await asyncio.gather(self.lean.shutdown(within), self._server.shutdown(within))


async def _start_admin(admin: AdminListener) -> web.AppRunner:
    admin_app, host, port = admin
    runner = web.AppRunner(admin_app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise ListenError(listen_problem(exc, host, port, "admin.listen")) from exc
    log.info("admin_listening", host=host, port=port)
    return runner


async def serve(
    app: web.Application,
    host: str,
    port: int,
    grace: float,
    admin: AdminListener | None = None,
    *,
    sockets: Sequence[socket.socket] = (),
) -> None:
    """``admin``: the application and address of ``admin.listen`` (metrics, admin, probes).
    ``sockets``: listen on these (bound by the supervisor of ``relay serve --workers N``,
    :func:`bind`) rather than binding ``host:port`` here."""
    # The grace is shared: half for requests in flight, the rest for delivery (a fifth)
    # and the bus flush (a quarter; see relay.app), so the process exits within it.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=grace / 2)
    await runner.setup()
    admin_runner: web.AppRunner | None = None
    listener = Listener(app, runner)
    try:
        try:
            await listener.start(host, port, sockets)
        except OSError as exc:
            raise ListenError(listen_problem(exc, host, port)) from exc
        if admin is not None:
            admin_runner = await _start_admin(admin)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        guard = app.get(GUARD)
        watcher = asyncio.create_task(guard.watch(listener.protocols)) if guard else None
        heap.settle()
        log.info("listening", host=host, port=port, pid=os.getpid())
        await stop.wait()
        log.info("shutting_down", grace_seconds=grace)
        if watcher is not None:
            watcher.cancel()
    finally:
        try:
            try:
                await listener.stop(grace / 2)
            finally:
                await runner.cleanup()
        finally:
            # last, so /readyz there says "shutting down" while requests finish
            if admin_runner is not None:
                await admin_runner.cleanup()
    log.info("stopped")
