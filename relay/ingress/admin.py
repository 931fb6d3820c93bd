"""Admin endpoints, off unless ``admin.token`` is configured: ``POST /admin/reload``."""

from __future__ import annotations

import msgspec
from aiohttp import web

from relay.ingress.auth import presented_token, token_matches
from relay.ingress.errors import error_response
from relay.reload import Reloader, ReloadRefused

RELOADER = web.AppKey("reloader", Reloader)
_encoder = msgspec.json.Encoder()


async def reload(request: web.Request) -> web.Response:
    reloader = request.app[RELOADER]
    token = reloader.config.admin.token
    if token is None:
        return error_response(404, "not_found", "admin endpoints are off (no admin.token)")
    presented = presented_token({}, request.headers)
    if presented is None or not token_matches(presented, [token]):
        return error_response(401, "unauthorized", "missing or invalid admin token")
    try:
        result = await reloader.reload()
    except ReloadRefused as exc:
        return error_response(409, "reload_refused", str(exc))
    return web.Response(
        body=_encoder.encode({"reloaded": True, **msgspec.structs.asdict(result)}),
        content_type="application/json",
    )
