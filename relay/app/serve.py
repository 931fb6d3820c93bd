"""Running the application: the event loop, listen, guard connections, shut down gracefully.

On SIGTERM or SIGINT: the listener closes (readiness fails), requests in flight finish
within the grace period, then delivery commits its watermarks and the bus flushes.
"""

from __future__ import annotations

import asyncio
import os
import signal

import structlog
from aiohttp import web

from relay.app import heap
from relay.ingress.guard import GUARD
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
    reuse_port: bool = False,
) -> None:
    """``admin``: the application and address of ``admin.listen`` (metrics, admin, probes).
    ``reuse_port``: share the port with the other workers of ``relay serve --workers N``."""
    # The grace is shared: half for requests in flight, the rest for delivery (a fifth)
    # and the bus flush (a quarter; see relay.app), so the process exits within it.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=grace / 2)
    await runner.setup()
    admin_runner: web.AppRunner | None = None
    try:
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
        try:
            await site.start()
        except OSError as exc:
            raise ListenError(listen_problem(exc, host, port)) from exc
        if admin is not None:
            admin_runner = await _start_admin(admin)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        guard = app.get(GUARD)
        watcher = (
            asyncio.create_task(guard.watch(runner.server))
            if guard is not None and runner.server is not None
            else None
        )
        heap.settle()
        log.info("listening", host=host, port=port, pid=os.getpid())
        await stop.wait()
        log.info("shutting_down", grace_seconds=grace)
        if watcher is not None:
            watcher.cancel()
    finally:
        try:
            await runner.cleanup()
        finally:
            # last, so /readyz there says "shutting down" while requests finish
            if admin_runner is not None:
                await admin_runner.cleanup()
    log.info("stopped")
