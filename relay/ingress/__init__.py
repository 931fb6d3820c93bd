"""The aiohttp ingress: routes, auth, limits, health."""

from __future__ import annotations

from aiohttp import web

from relay.ingress import admin, handlers
from relay.ingress.middleware import request_context
from relay.ingress.state import INGRESS, IngressState

__all__ = ["INGRESS", "IngressState", "add_routes", "middlewares"]

middlewares = [request_context]


def add_routes(app: web.Application, *, hooks: bool = True) -> None:
    if hooks:
        app.router.add_post("/v1/hooks/{source}", handlers.receive_hook)
        app.router.add_post("/v1/hooks/{source}/{kind}", handlers.receive_hook)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/metrics", handlers.metrics)
    app.router.add_post("/admin/reload", admin.reload)
    app.router.add_post("/admin/api/subscribers/{name}/enable", admin.enable_subscriber)
    app.router.add_get("/readyz", handlers.readyz)
