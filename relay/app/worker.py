"""What a process does differently as one of ``relay serve --workers N``'s workers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Callable

import structlog
from aiohttp import web

from relay import metrics_shared
from relay.admin.keys import RELOAD, Reloaded
from relay.workers import Worker

log = structlog.get_logger("relay.worker")

WATCH_SECONDS = 1.0


def _watch_supervisor(worker: Worker) -> Callable[[web.Application], AsyncIterator[None]]:
    """A worker whose supervisor is gone (killed with -9) stops as on SIGTERM, draining."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        async def watch() -> None:
            while True:  # no event tells of a parent's death: look now and then
                await asyncio.sleep(WATCH_SECONDS)
                if os.getppid() != worker.supervisor:
                    break
            log.error("supervisor_gone", slot=worker.slot, supervisor=worker.supervisor)
            os.kill(os.getpid(), signal.SIGTERM)

        task = asyncio.create_task(watch(), name="watch-supervisor")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context


def as_worker(app: web.Application, worker: Worker) -> None:
    """Before ``build_admin_app``, which takes the reload as it finds it."""
    app.cleanup_ctx.append(_watch_supervisor(worker))
    if metrics_shared.enabled():
        app.cleanup_ctx.append(metrics_shared.publisher_context)
    reload_here = app[RELOAD]

    async def reload_everywhere() -> Reloaded:
        # POST /admin/reload reaches one worker: the supervisor passes it on as SIGHUP to
        # every worker (this one reloads again, finding nothing new)
        result = await reload_here()
        os.kill(worker.supervisor, signal.SIGHUP)
        return result

    app[RELOAD] = reload_everywhere
