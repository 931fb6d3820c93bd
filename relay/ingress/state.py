"""Typed application state shared by the ingress handlers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from relay.config import Config
from relay.ingress.auth import SourceAuth
from relay.live import Current, Live
from relay.metrics import REQUESTS
from relay.pipeline import Pipeline
from relay.ratelimit import RateLimiter

UNKNOWN_SOURCE = "<unknown>"


@dataclass(slots=True)
class SourceEntry:
    name: str
    provider: str
    auth: SourceAuth
    limiter: RateLimiter | None = None
    max_in_flight: int = 1024
    """This source's share of the in-flight requests (``sources.<name>.max_in_flight``)."""
    in_flight: int = 0
    _counters: dict[str, Any] = field(default_factory=dict)

    def count(self, outcome: str) -> None:
        counter = self._counters.get(outcome)
        if counter is None:
            counter = self._counters[outcome] = REQUESTS.labels(self.name, outcome)
        counter.inc()


@dataclass(slots=True, frozen=True)
class IngressSettings:
    """What the handlers read from the configuration, built whole from it: the ingress's
    part of the live settings (``Live.ingress``, :func:`live_for`)."""

    sources: dict[str, SourceEntry]
    max_body_bytes: int
    body_timeout: float
    max_in_flight: int
    debug_errors: bool = False
    metrics_token: str | None = None
    admin_token: str | None = None

    @classmethod
    def from_config(cls, config: Config) -> IngressSettings:
        return cls(
            sources={
                name: SourceEntry(
                    name,
                    source.provider,
                    SourceAuth(source),
                    RateLimiter(source.rate_limit) if source.rate_limit is not None else None,
                    max_in_flight=source.in_flight_share(config.limits, len(config.sources)),
                )
                for name, source in config.sources.items()
            },
            max_body_bytes=config.limits.max_body_bytes,
            body_timeout=config.limits.body_timeout,
            max_in_flight=config.limits.max_in_flight,
            debug_errors=config.debug_errors,
            metrics_token=config.metrics.token,
            admin_token=config.admin.token,
        )


def live_for(config: Config) -> Live[IngressSettings]:
    """The live settings of ``config``, whole: what start-up holds and a reload swaps in."""
    return Live.build(config, IngressSettings.from_config(config))


@dataclass(slots=True)
class IngressState:
    """The ingress's live state: the pipeline, the current settings, and counters.

    ``current`` is the pipeline's own holder (``pipeline.settings``): a request reads
    ``current.live`` once and hands that snapshot to the pipeline.
    """

    pipeline: Pipeline
    current: Current[IngressSettings]
    accepting: bool = True
    in_flight: int = 0


INGRESS = web.AppKey("ingress", IngressState)
REQUEST_ID = web.RequestKey("request_id", str)
