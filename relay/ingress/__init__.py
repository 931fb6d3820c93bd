"""The aiohttp ingress: check a request, hand one Inbound to the pipeline; probes, metrics."""

from __future__ import annotations

import aiohttp.web_response
from aiohttp import web

from relay.ingress import health
from relay.ingress.hooks import receive_hook
from relay.ingress.middleware import request_context
from relay.ingress.state import INGRESS, IngressState

__all__ = ["HOOKS", "INGRESS", "METRICS", "PROBES", "IngressState", "middlewares"]

middlewares = [request_context]

# aiohttp stamps "Server: Python/3.x aiohttp/3.y" on every response, the ones its parser
# sends before any handler runs (a malformed request line) included, and has no setting for
# it: the constant it reads is replaced, so no response advertises versions.
aiohttp.web_response.SERVER_SOFTWARE = "relay"  # type: ignore[attr-defined]


HOOKS: tuple[web.RouteDef, ...] = (
    web.post("/v1/hooks/{source}", receive_hook),
    web.post("/v1/hooks/{source}/{kind}", receive_hook),
)
PROBES: tuple[web.RouteDef, ...] = (
    web.get("/healthz", health.healthz),
    web.get("/readyz", health.readyz),
)
METRICS: tuple[web.RouteDef, ...] = (web.get("/metrics", health.metrics),)
"""Served with the admin endpoints (on ``admin.listen`` when it is set)."""
