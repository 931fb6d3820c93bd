"""The aiohttp ingress: check a request, hand one Inbound to the pipeline; probes, admin."""

from __future__ import annotations

import aiohttp.web_response
from aiohttp import web

from relay.ingress import admin, health
from relay.ingress.hooks import receive_hook, traced_receive_hook
from relay.ingress.middleware import request_context
from relay.ingress.state import INGRESS, IngressState

__all__ = ["INGRESS", "IngressState", "add_admin_routes", "add_routes", "middlewares"]

middlewares = [request_context]

# aiohttp stamps "Server: Python/3.x aiohttp/3.y" on every response, the ones its parser
# sends before any handler runs (a malformed request line) included, and has no setting for
# it: the constant it reads is replaced, so no response advertises versions.
aiohttp.web_response.SERVER_SOFTWARE = "relay"  # type: ignore[attr-defined]


def add_routes(
    app: web.Application, *, hooks: bool = True, admin_routes: bool = True, traced: bool = False
) -> None:
    """``admin_routes=False`` when ``admin.listen`` gives them a listener of their own;
    ``traced``: the hooks in a span each (chosen here, once: untraced hooks pay nothing)."""
    if hooks:
        handler = traced_receive_hook if traced else receive_hook
        app.router.add_post("/v1/hooks/{source}", handler)
        app.router.add_post("/v1/hooks/{source}/{kind}", handler)
    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    if admin_routes:
        add_admin_routes(app)


def add_admin_routes(app: web.Application) -> None:
    app.router.add_get("/metrics", health.metrics)
    app.router.add_post("/admin/reload", admin.reload)
    app.router.add_post("/admin/api/subscribers/{name}/enable", admin.enable_subscriber)
