"""Admin endpoints, off unless ``admin.token`` is configured: ``POST /admin/reload``,
``POST /admin/api/subscribers/{name}/enable``.

The keys are typed by what these handlers need (a callable), not by who provides it:
the composition root (relay.app) stores the reloader's and the delivery service's
methods under them, and ingress does not import the reloader.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec
from aiohttp import web

from relay.config import Config
from relay.delivery.service import UnknownSubscriber
from relay.ingress.auth import presented_token, token_matches
from relay.ingress.responses import error_response
from relay.ingress.state import INGRESS


class ReloadRefused(Exception):
    """The new configuration was not taken; the running one stays. The message says why."""


class Reloaded(msgspec.Struct, frozen=True):
    sources: list[str]
    routes: list[str]
    subscribers: list[str]


CONFIG: web.AppKey[Callable[[], Config]] = web.AppKey("config")
"""The configuration in force (the reloaded one after a reload)."""
RELOAD: web.AppKey[Callable[[], Awaitable[Reloaded]]] = web.AppKey("reload")
"""Reload the configuration file; raises ReloadRefused."""
ENABLE: web.AppKey[Callable[[str], Awaitable[bool]]] = web.AppKey("enable_subscriber")
"""Enable a subscriber by name (True when it was disabled); raises UnknownSubscriber.
Absent when this process does not deliver."""

_encoder = msgspec.json.Encoder()


def _refused(request: web.Request) -> web.Response | None:
    """The answer when the caller may not use the admin API; None when it may."""
    token = request.app[INGRESS].settings.admin_token
    if token is None:
        return error_response(404, "not_found", "admin endpoints are off (no admin.token)")
    presented = presented_token({}, request.headers)
    if presented is None or not token_matches(presented, [token]):
        return error_response(401, "unauthorized", "missing or invalid admin token")
    return None


async def enable_subscriber(request: web.Request) -> web.Response:
    """Resume a subscriber disabled by a 410 Gone, at the event that got the 410."""
    refused = _refused(request)
    if refused is not None:
        return refused
    enable = request.app.get(ENABLE)
    if enable is None:
        return error_response(404, "not_found", "this process does not deliver (--role ingress)")
    name = request.match_info["name"]
    try:
        was_disabled = await enable(name)
    except UnknownSubscriber as exc:
        return error_response(404, "unknown_subscriber", str(exc))
    return web.Response(
        body=_encoder.encode({"subscriber": name, "enabled": True, "was_disabled": was_disabled}),
        content_type="application/json",
    )


async def reload(request: web.Request) -> web.Response:
    refused = _refused(request)
    if refused is not None:
        return refused
    try:
        result = await request.app[RELOAD]()
    except ReloadRefused as exc:
        return error_response(409, "reload_refused", str(exc))
    return web.Response(
        body=_encoder.encode({"reloaded": True, **msgspec.structs.asdict(result)}),
        content_type="application/json",
    )
