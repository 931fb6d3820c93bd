"""Composition root: builds the pipeline and the aiohttp application from a Config."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

import structlog
from aiohttp import web

from relay.admin_api import OPS
from relay.admin_ops import Operations
from relay.bus import Bus
from relay.bus.embedded import EmbeddedLog
from relay.config import Config, seconds
from relay.dedupe import Deduplicator
from relay.delivery.service import DeliveryService
from relay.index import Indexer
from relay.ingest import Ingest
from relay.ingress import INGRESS, IngressState, add_admin_routes, add_routes, handlers, middlewares
from relay.ingress.admin import RELOADER
from relay.ingress.guard import GUARD, ConnectionGuard
from relay.reload import Reloader, ReloadRefused
from relay.routing import Router

log = structlog.get_logger("relay.app")
DELIVERY = web.AppKey("delivery", DeliveryService)


def make_bus(config: Config, role: str = "all") -> Bus:
    """Kafka behind an on-disk spool, or the embedded log when no Kafka is configured."""
    kafka = config.kafka
    if kafka is None:
        return EmbeddedLog(config.data_path, retention=seconds(config.retention) or None)
    from relay.bus.kafka import KafkaBus
    from relay.bus.spool import SpooledBus

    spool_after = seconds(kafka.spool_after)
    return SpooledBus(
        lambda: KafkaBus(kafka, delivery_timeout=spool_after),
        config.data_path,
        spool_after=spool_after,
        max_bytes=kafka.spool_max_bytes,
        max_record_bytes=kafka.max_record_bytes,
        # processes of other roles may share data_dir: each drains its own spool
        file_name="spool.sqlite3" if role in ("all", "ingress") else f"spool-{role}.sqlite3",
    )


Role = Literal["all", "ingress", "delivery"]


async def _reload_quietly(reloader: Reloader) -> object:
    """SIGHUP has nobody to answer: the outcome is logged by the reloader."""
    try:
        return await reloader.reload()
    except ReloadRefused:
        return None


def build_app(
    config: Config,
    *,
    bus: Bus | None = None,
    role: Role = "all",
    config_path: Path | None = None,
    reload_on_sighup: bool = False,
) -> web.Application:
    """The aiohttp application for a role: ingress (hooks), delivery (subscribers), or both.

    Every role serves ``/healthz``, ``/readyz`` and ``/metrics``; the bus is opened and
    closed with the app. With ``config_path`` the configuration can be reloaded live
    (``POST /admin/reload``, and SIGHUP when ``reload_on_sighup``).
    """
    bus = bus if bus is not None else make_bus(config, role)
    dedupe = Deduplicator(seconds(config.dedupe.window), config.dedupe.max_entries)
    binary = config.kafka is not None and config.kafka.cloudevents_mode == "binary"
    ingest = Ingest(
        bus,
        Router(config.routes, config.topics.events),
        config.topics,
        dedupe,
        binary=binary,
        max_events=config.limits.max_events_per_body,
        max_record_bytes=config.kafka.max_record_bytes if config.kafka else None,
    )
    state = IngressState.build(config, ingest)
    app = web.Application(middlewares=middlewares)
    app[INGRESS] = state
    guard = app[GUARD] = ConnectionGuard(seconds(config.limits.header_timeout))
    delivery = DeliveryService(config, bus) if role in ("all", "delivery") else None

    async def bus_lifetime(app: web.Application) -> AsyncIterator[None]:
        await bus.start()
        open_sources = [name for name, entry in state.sources.items() if entry.auth.is_open]
        if open_sources and role != "delivery":
            log.warning("unauthenticated_sources", sources=open_sources)
        log.info("bus_started", bus=bus.name, role=role, sources=sorted(state.sources))
        yield
        state.accepting = False
        try:
            async with asyncio.timeout(max(1.0, seconds(config.shutdown_grace) / 4)):
                await bus.close()
        except TimeoutError:
            # what Kafka has not acknowledged was not acknowledged to anyone either
            log.warning("bus_close_timed_out", bus=bus.name)
        log.info("bus_closed", bus=bus.name)

    async def delivery_lifetime(app: web.Application) -> AsyncIterator[None]:
        assert delivery is not None
        await delivery.start()
        yield
        # within the shutdown grace, leaving time for the bus to flush after it
        await delivery.stop(grace=min(5.0, seconds(config.shutdown_grace) / 5))

    async def stop_accepting(app: web.Application) -> None:
        state.accepting = False

    reloader = Reloader(config, config_path, state, ingest, delivery, guard)
    app[RELOADER] = reloader

    async def sighup_reload(app: web.Application) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[object]] = set()

        def on_sighup() -> None:
            task = asyncio.create_task(_reload_quietly(reloader))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        loop.add_signal_handler(signal.SIGHUP, on_sighup)
        yield
        loop.remove_signal_handler(signal.SIGHUP)

    # the console's index, kept by the delivering roles when the admin side is on
    indexer = (
        Indexer.for_config(config)
        if delivery is not None and config.admin.token is not None
        else None
    )
    ops = app[OPS] = Operations(lambda: reloader.config, delivery, indexer)

    async def index_lifetime(app: web.Application) -> AsyncIterator[None]:
        if indexer is not None:
            await indexer.start()
        yield
        await ops.close()
        if indexer is not None:
            await indexer.close()

    app.on_shutdown.append(stop_accepting)
    app.cleanup_ctx.append(bus_lifetime)
    app.cleanup_ctx.append(index_lifetime)
    if delivery is not None:
        app[DELIVERY] = delivery
        app.cleanup_ctx.append(delivery_lifetime)
    if reload_on_sighup and config_path is not None:
        app.cleanup_ctx.append(sighup_reload)
    add_routes(app, hooks=role in ("all", "ingress"), admin_routes=config.admin.listen is None)
    return app


def build_admin_app(app: web.Application) -> web.Application:
    """The ``admin.listen`` listener's application: metrics, admin and probes, no hooks.

    It shares the main application's state; the bus and delivery live with the main one.
    """
    admin = web.Application(middlewares=middlewares)  # request ids, JSON errors
    admin[INGRESS] = app[INGRESS]
    admin[RELOADER] = app[RELOADER]
    admin[OPS] = app[OPS]
    admin.router.add_get("/healthz", handlers.healthz)
    admin.router.add_get("/readyz", handlers.readyz)
    add_admin_routes(admin)
    return admin
