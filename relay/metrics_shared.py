"""Metrics across ``relay serve --workers N``: prometheus-client's multiprocess mode.

Each worker writes its counters and histograms to files under ``PROMETHEUS_MULTIPROC_DIR``
(set by the supervisor, under ``data_dir``); a scrape of any worker adds them all up. The
live gauges (lag, breaker state, spool depth) are read from objects inside one process, so
each worker copies its readings into multiprocess gauges every second; how those combine
is chosen per gauge (a dead worker's readings are dropped: ``live`` modes).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Literal

import structlog
from aiohttp import web
from prometheus_client import Gauge

from relay.metrics import LIVE
from relay.workers import METRICS_ENV

log = structlog.get_logger("relay.metrics")

Mode = Literal["livesum", "livemax"]
MODES: dict[str, Mode] = {
    # Kafka splits a group's partitions between workers; on the embedded log only the
    # active worker reads: either way the subscriber's lag is the sum.
    "relay_consumer_lag": "livesum",
    # each worker has its own breaker per subscriber: show the most open one
    "relay_circuit_state": "livemax",
    "relay_subscriber_disabled": "livemax",
    # one spool per worker
    "relay_spool_records": "livesum",
    "relay_spool_bytes": "livesum",
}
PUBLISH_SECONDS = 1.0


def enabled() -> bool:
    return METRICS_ENV in os.environ


class LivePublisher:
    """Copies this worker's live gauge readings into multiprocess gauges."""

    def __init__(self) -> None:
        self._gauges: dict[str, Gauge] = {}
        self._seen: dict[str, set[tuple[str, ...]]] = {}

    def _gauge(self, name: str, documentation: str, labels: list[str]) -> Gauge:
        gauge = self._gauges.get(name)
        if gauge is None:
            gauge = Gauge(
                name,
                documentation,
                labels,
                registry=None,  # the multiprocess collector reads it from the files
                multiprocess_mode=MODES.get(name, "livesum"),
            )
            self._gauges[name] = gauge
        return gauge

    def publish(self) -> None:
        for family in LIVE.collect():
            now: set[tuple[str, ...]] = set()
            gauge: Gauge | None = self._gauges.get(family.name)
            for sample in family.samples:
                labels = list(sample.labels)
                gauge = self._gauge(family.name, family.documentation, labels)
                values = tuple(sample.labels[name] for name in labels)
                (gauge.labels(*values) if values else gauge).set(sample.value)
                now.add(values)
            for gone in self._seen.get(family.name, set()) - now:
                if gauge is not None and gone:  # a subscriber removed or moved away
                    gauge.labels(*gone).set(0)
                    gauge.remove(*gone)
            self._seen[family.name] = now


async def publisher_context(app: web.Application) -> AsyncIterator[None]:
    publisher = LivePublisher()

    async def every_second() -> None:
        while True:
            try:
                publisher.publish()
            except Exception as exc:  # a scrape must never take the worker down
                log.warning("live_metrics_failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(PUBLISH_SECONDS)

    task = asyncio.create_task(every_second(), name="live-metrics")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
