"""The aiohttp ingress: routes, auth, limits, health."""

from __future__ import annotations

import aiohttp.web_response
from aiohttp import web

from relay.ingress import admin, handlers
from relay.ingress.middleware import request_context
from relay.ingress.state import INGRESS, IngressState

__all__ = ["INGRESS", "IngressState", "add_admin_routes", "add_routes", "middlewares"]

middlewares = [request_context]

# aiohttp stamps "Server: Python/3.x aiohttp/3.y" on every response, the ones its parser
# sends before any handler runs (a malformed request line) included, and has no setting for
# it: the constant it reads is replaced, so no response advertises versions.
aiohttp.web_response.SERVER_SOFTWARE = "relay"  # type: ignore[attr-defined]


def add_routes(app: web.Application, *, hooks: bool = True, admin_routes: bool = True) -> None:
    """``admin_routes=False`` when ``admin.listen`` gives them a listener of their own."""
    if hooks:
        app.router.add_post("/v1/hooks/{source}", handlers.receive_hook)
        app.router.add_post("/v1/hooks/{source}/{kind}", handlers.receive_hook)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/readyz", handlers.readyz)
    if admin_routes:
        add_admin_routes(app)


def add_admin_routes(app: web.Application) -> None:
    app.router.add_get("/metrics", handlers.metrics)
    app.router.add_post("/admin/reload", admin.reload)
    app.router.add_post("/admin/api/subscribers/{name}/enable", admin.enable_subscriber)
    from relay.admin_api import add_api_routes  # the API needs delivery and the index
    from relay.console import add_console_routes

    add_api_routes(app)
    add_console_routes(app)
