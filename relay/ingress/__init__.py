"""The aiohttp ingress: check a request, hand one Inbound to the pipeline; probes, metrics."""

from __future__ import annotations

import aiohttp.web_response
from aiohttp import web

from relay.ingress import health
from relay.ingress.hooks import receive_hook, traced_receive_hook
from relay.ingress.middleware import request_context
from relay.ingress.state import INGRESS, IngressState

__all__ = [
    "HOOKS",
    "INGRESS",
    "LEAN",
    "METRICS",
    "PROBES",
    "TRACED_HOOKS",
    "IngressState",
    "middlewares",
]

middlewares = [request_context]

# aiohttp stamps "Server: Python/3.x aiohttp/3.y" on every response, the ones its parser
# sends before any handler runs (a malformed request line) included, and has no setting for
# it: the constant it reads is replaced, so no response advertises versions.
aiohttp.web_response.SERVER_SOFTWARE = "relay"  # type: ignore[attr-defined]


HOOKS: tuple[web.RouteDef, ...] = (
    web.post("/v1/hooks/{source}", receive_hook),
    web.post("/v1/hooks/{source}/{kind}", receive_hook),
)
TRACED_HOOKS: tuple[web.RouteDef, ...] = (
    web.post("/v1/hooks/{source}", traced_receive_hook),
    web.post("/v1/hooks/{source}/{kind}", traced_receive_hook),
)
"""The hooks in a span each, registered instead of :data:`HOOKS` when relay traces (chosen
once: untraced hooks pay nothing)."""
PROBES: tuple[web.RouteDef, ...] = (
    web.get("/healthz", health.healthz),
    web.get("/readyz", health.readyz),
)
METRICS: tuple[web.RouteDef, ...] = (web.get("/metrics", health.metrics),)
"""Served with the admin endpoints (on ``admin.listen`` when it is set)."""
LEAN = web.AppKey("lean_hooks", bool)
"""True: the application's hooks may be served by :mod:`relay.ingress.lean` (they are
registered, untraced, and ``listen.server`` is ``lean``)."""
