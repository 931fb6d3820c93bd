"""Per-request context (request id bound into every log line) and JSON errors."""

from __future__ import annotations

import re
import uuid

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from relay.ingress.guard import GUARD
from relay.ingress.responses import error_response, from_http_exception
from relay.ingress.state import REQUEST_ID

log = structlog.get_logger("relay.ingress")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _request_id(request: web.Request) -> str:
    given = request.headers.get("X-Request-Id")
    if given and _REQUEST_ID.match(given):
        return given
    return uuid.uuid4().hex


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = _request_id(request)
    request[REQUEST_ID] = request_id
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    guard = request.app.get(GUARD)
    if guard is not None:
        guard.started(request.protocol)
    response: web.StreamResponse
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = from_http_exception(exc)
    except Exception:
        log.exception("unhandled_error", path=request.path)
        response = error_response(500, "internal_error", "unexpected error; the body was not lost")
    finally:
        if guard is not None:
            guard.finished(request.protocol)
    response.headers["X-Request-Id"] = request_id
    return response
