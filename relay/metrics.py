"""Prometheus metrics (``GET /metrics``), defined once on the default registry.

Counters and histograms are updated where things happen; gauges that describe live state
(consumer lag, spool depth) are read from the running objects when scraped.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Hashable, Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from relay.workers import METRICS_ENV

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

REQUESTS = Counter(
    "relay_requests", "Webhook requests by source and outcome", ["source", "outcome"]
)
EVENTS = Counter("relay_events", "Canonical events published, by type", ["type"])
PUBLISH_SECONDS = Histogram(
    "relay_publish_seconds",
    "Time for the bus to make one request's records durable",
    buckets=_LATENCY_BUCKETS,
)
DELIVERIES = Counter(
    "relay_deliveries",
    "Deliveries to subscribers by final outcome (delivered, deadlettered), and retried: "
    "one per failed attempt that will be tried again, counted when it fails",
    ["subscriber", "outcome"],
)
DELIVERY_ATTEMPTS = Counter(
    "relay_delivery_attempts",
    "Attempts to deliver, counted as each one ends: delivered, http_4xx, http_5xx, error "
    "(connection refused, timeout, ...)",
    ["subscriber", "outcome"],
)
SKIPPED = Counter(
    "relay_delivery_skipped",
    "Records a subscriber skipped: not an event it can read (reason says why)",
    ["subscriber", "reason"],
)
DELIVERY_SECONDS = Histogram(
    "relay_delivery_seconds",
    "Time from the first attempt to the final outcome of one delivery",
    ["subscriber"],
    buckets=_LATENCY_BUCKETS,
)

Gauge = Callable[[], Iterable[tuple[tuple[str, ...], float]]]


class LiveGauges(Collector):
    """Gauges computed at scrape time from whatever objects registered a reader."""

    def __init__(self) -> None:
        self._readers: dict[str, tuple[str, list[str], weakref.WeakSet[object]]] = {}
        self._functions: weakref.WeakKeyDictionary[object, dict[str, Gauge]] = (
            weakref.WeakKeyDictionary()
        )
        self._keyed: dict[str, dict[Hashable, Gauge]] = {}

    def define(self, name: str, documentation: str, labels: list[str]) -> None:
        self._readers.setdefault(name, (documentation, labels, weakref.WeakSet()))

    def track(self, name: str, owner: object, read: Gauge) -> None:
        """``read`` is called on scrape while ``owner`` is alive."""
        self._readers[name][2].add(owner)
        self._functions.setdefault(owner, {})[name] = read

    def put(self, name: str, key: Hashable, read: Gauge) -> None:
        """Like :meth:`track`, but one reader per key (a subscriber's name, say): a new
        reader replaces the old one, so a restarted worker never leaves a stale series."""
        self._keyed.setdefault(name, {})[key] = read

    def drop(self, key: Hashable) -> None:
        for readers in self._keyed.values():
            readers.pop(key, None)

    def collect(self) -> Iterable[GaugeMetricFamily]:
        for name, (documentation, labels, owners) in self._readers.items():
            family = GaugeMetricFamily(name, documentation, labels=labels)
            readers = [self._functions.get(owner, {}).get(name) for owner in list(owners)]
            readers += list(self._keyed.get(name, {}).values())
            for read in readers:
                if read is None:
                    continue
                for label_values, value in read():
                    family.add_metric(list(label_values), value)
            yield family


LIVE = LiveGauges()
LIVE.define("relay_consumer_lag", "Records not yet delivered or dead-lettered", ["subscriber"])
LIVE.define(
    "relay_circuit_state",
    "A subscriber's circuit breaker: 0 closed, 1 half-open (probing), 2 open",
    ["subscriber"],
)
LIVE.define(
    "relay_subscriber_disabled",
    "1 while a subscriber is disabled (its endpoint answered 410 Gone)",
    ["subscriber"],
)
LIVE.define("relay_spool_records", "Records waiting in the spool for the broker", [])
LIVE.define("relay_spool_bytes", "Bytes waiting in the spool for the broker", [])
REGISTRY.register(LIVE)


def shared_registry() -> CollectorRegistry:
    """Every worker's samples, read from the multiprocess files at each scrape (the live
    gauges there are each worker's copies: relay.metrics_shared)."""
    shared = CollectorRegistry()
    multiprocess.MultiProcessCollector(shared)  # type: ignore[no-untyped-call]
    return shared


def exposition() -> tuple[bytes, str]:
    if METRICS_ENV in os.environ:  # relay serve --workers N: every worker's, added up
        return generate_latest(shared_registry()), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
