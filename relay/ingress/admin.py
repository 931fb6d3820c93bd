"""Admin endpoints, off unless ``admin.token`` is configured: ``POST /admin/reload``,
``POST /admin/api/subscribers/{name}/enable``."""

from __future__ import annotations

import msgspec
from aiohttp import web

from relay.delivery.service import UnknownSubscriber
from relay.ingress.auth import presented_token, token_matches
from relay.ingress.errors import error_response
from relay.reload import Reloader, ReloadRefused

RELOADER = web.AppKey("reloader", Reloader)
_encoder = msgspec.json.Encoder()


def _refused(request: web.Request) -> web.Response | None:
    """The answer when the caller may not use the admin API; None when it may."""
    token = request.app[RELOADER].config.admin.token
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
    delivery = request.app[RELOADER].delivery
    if delivery is None:
        return error_response(404, "not_found", "this process does not deliver (--role ingress)")
    name = request.match_info["name"]
    try:
        was_disabled = await delivery.enable(name)
    except UnknownSubscriber as exc:
        return error_response(404, "unknown_subscriber", str(exc))
    return web.Response(
        body=_encoder.encode({"subscriber": name, "enabled": True, "was_disabled": was_disabled}),
        content_type="application/json",
    )


async def reload(request: web.Request) -> web.Response:
    reloader = request.app[RELOADER]
    refused = _refused(request)
    if refused is not None:
        return refused
    try:
        result = await reloader.reload()
    except ReloadRefused as exc:
        return error_response(409, "reload_refused", str(exc))
    return web.Response(
        body=_encoder.encode({"reloaded": True, **msgspec.structs.asdict(result)}),
        content_type="application/json",
    )
