"""Composition root: builds the pipeline and the aiohttp application from a Config.

The only package that imports all the others. Each resource's lifetime is one module-level
cleanup context reading its object from an AppKey; ``build_app`` only wires them.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import structlog
from aiohttp import web

from relay import admin
from relay.admin import CONFIG, OPS, RELOAD, Operations, ReloadRefused
from relay.app.reload import Reloader
from relay.bus import Bus, open_bus
from relay.config import Config
from relay.console import add_console_routes
from relay.delivery.service import DeliveryService
from relay.index import Indexer
from relay.ingress import (
    HOOKS,
    INGRESS,
    LEAN,
    METRICS,
    PROBES,
    TRACED_HOOKS,
    IngressState,
    middlewares,
)
from relay.ingress.guard import GUARD, ConnectionGuard
from relay.ingress.state import live_for
from relay.live import Current
from relay.pipeline import Pipeline

if TYPE_CHECKING:
    from relay.telemetry.otel import Tracing

__all__ = ["BUS", "DELIVERY", "RELOADER", "Role", "build_admin_app", "build_app"]

log = structlog.get_logger("relay.app")

Role = Literal["all", "ingress", "delivery"]
"""``relay serve --role``: hooks, subscribers, or both."""

BUS: web.AppKey[Bus] = web.AppKey("bus")
DELIVERY = web.AppKey("delivery", DeliveryService)
RELOADER = web.AppKey("reloader", Reloader)
ROLE = web.AppKey("role", str)
INDEXER: web.AppKey[Indexer | None] = web.AppKey("indexer")


def _grace(app: web.Application) -> float:
    # shutdown_grace is restart-only: the reloader's config has the one started with
    return app[RELOADER].config.shutdown_grace


async def bus_context(app: web.Application) -> AsyncIterator[None]:
    bus, state, role = app[BUS], app[INGRESS], app[ROLE]
    await bus.start()
    sources = state.current.live.ingress.sources
    open_sources = [name for name, entry in sources.items() if entry.auth.is_open]
    if open_sources and role != "delivery":
        log.warning("unauthenticated_sources", sources=open_sources)
    log.info("bus_started", bus=bus.name, role=role, sources=sorted(sources))
    yield
    state.accepting = False
    try:
        async with asyncio.timeout(max(1.0, _grace(app) / 4)):
            await bus.close()
    except TimeoutError:
        # what Kafka has not acknowledged was not acknowledged to anyone either
        log.warning("bus_close_timed_out", bus=bus.name)
    log.info("bus_closed", bus=bus.name)


async def delivery_context(app: web.Application) -> AsyncIterator[None]:
    delivery = app[DELIVERY]
    await delivery.start()
    yield
    # within the shutdown grace, leaving time for the bus to flush after it
    await delivery.stop(grace=min(5.0, _grace(app) / 5))


async def index_context(app: web.Application) -> AsyncIterator[None]:
    """The console's index (kept by the delivering roles when the admin side is on)."""
    indexer = app[INDEXER]
    if indexer is not None:
        await indexer.start()
    yield
    await app[OPS].close()
    if indexer is not None:
        await indexer.close()


async def _reload_quietly(reloader: Reloader) -> object:
    """SIGHUP has nobody to answer: the outcome is logged by the reloader."""
    try:
        return await reloader.reload()
    except ReloadRefused:
        return None


async def sighup_context(app: web.Application) -> AsyncIterator[None]:
    reloader = app[RELOADER]
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[object]] = set()

    def on_sighup() -> None:
        task = asyncio.create_task(_reload_quietly(reloader))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    loop.add_signal_handler(signal.SIGHUP, on_sighup)
    yield
    loop.remove_signal_handler(signal.SIGHUP)


def _tracing_context(tracing: Tracing) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        yield
        # after the bus and delivery (cleanup runs in reverse): their last spans go too
        if not await tracing.close(within=min(5.0, _grace(app) / 4)):
            log.warning("trace_export_timed_out")

    return context


async def _stop_accepting(app: web.Application) -> None:
    app[INGRESS].accepting = False


def build_app(
    config: Config,
    *,
    bus: Bus | None = None,
    role: Role = "all",
    config_path: Path | None = None,
    reload_on_sighup: bool = False,
    index: bool = True,
    tracing: Tracing | None = None,
) -> web.Application:
    """The aiohttp application for a role: ingress (hooks), delivery (subscribers), or both.

    Every role serves ``/healthz``, ``/readyz`` and ``/metrics``; the bus is opened and
    closed with the app. With ``config_path`` the configuration can be reloaded live
    (``POST /admin/reload``, and SIGHUP when ``reload_on_sighup``). ``index=False``: the
    console's index is kept by another process (worker slot 0 of ``--workers N``).
    ``tracing`` (:func:`relay.telemetry.start`): spans for hooks, publishing and deliveries,
    flushed when the app stops; None traces nothing.
    """
    bus = bus if bus is not None else open_bus(config, role)
    current = Current(live_for(config))  # the one holder every reader shares
    pipeline = Pipeline(
        bus,
        current,
        config.topics,
        binary=config.kafka is not None and config.kafka.cloudevents_mode == "binary",
        max_record_bytes=config.kafka.max_record_bytes if config.kafka else None,
        tracing=tracing,
    )
    state = IngressState(pipeline, current)
    guard = ConnectionGuard(current)
    delivery = (
        DeliveryService(config, bus, tracing=tracing) if role in ("all", "delivery") else None
    )
    reloader = Reloader(config, config_path, current, delivery)
    indexer = (
        Indexer.for_config(config)
        if index and delivery is not None and config.admin.token is not None
        else None
    )

    app = web.Application(middlewares=middlewares)
    if tracing is not None:
        app.cleanup_ctx.append(_tracing_context(tracing))
    app[INGRESS], app[GUARD], app[BUS], app[ROLE] = state, guard, bus, role
    app[RELOADER], app[RELOAD], app[CONFIG] = reloader, reloader.reload, lambda: reloader.config
    app[INDEXER] = indexer
    app[OPS] = Operations(lambda: reloader.config, delivery, indexer)
    app.on_shutdown.append(_stop_accepting)
    app.cleanup_ctx.append(bus_context)
    app.cleanup_ctx.append(index_context)
    if delivery is not None:
        app[DELIVERY] = delivery
        app.cleanup_ctx.append(delivery_context)
    if reload_on_sighup and config_path is not None:
        app.cleanup_ctx.append(sighup_context)
    if role in ("all", "ingress"):
        app.add_routes(HOOKS if tracing is None else TRACED_HOOKS)
    app[LEAN] = role != "delivery" and tracing is None and config.listen.server == "lean"
    app.add_routes(PROBES)
    if config.admin.listen is None:  # else build_admin_app gives them a listener
        _add_admin_side(app)
    return app


def _add_admin_side(app: web.Application) -> None:
    """/metrics, /admin/*, the admin API and the console (they need delivery and the index,
    so they are wired here rather than by ingress)."""
    app.add_routes(METRICS)
    app.add_routes(admin.ROUTES)
    add_console_routes(app)


def build_admin_app(app: web.Application) -> web.Application:
    """The ``admin.listen`` listener's application: metrics, admin and probes, no hooks.

    It shares the main application's state; the bus and delivery live with the main one.
    """
    side = web.Application(middlewares=middlewares)  # request ids, JSON errors
    side[INGRESS], side[RELOAD], side[CONFIG] = app[INGRESS], app[RELOAD], app[CONFIG]
    side[OPS] = app[OPS]
    side.add_routes(PROBES)
    _add_admin_side(side)
    return side
