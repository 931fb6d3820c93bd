"""Per-request context (request id bound into every log line) and JSON errors."""

from __future__ import annotations

import itertools
import os
import re
import secrets
from collections.abc import Mapping

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from relay.ingress.guard import GUARD
from relay.ingress.responses import error_response, from_http_exception
from relay.ingress.state import INGRESS, REQUEST_ID

log = structlog.get_logger("relay.ingress")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIds:
    """Request ids as unique as ``uuid4().hex`` (32 hex digits) for a fraction of its cost.

    80 random bits drawn once per process (again in a forked child), then a 48-bit
    counter: no two processes share a prefix, no two requests of one process share a
    number.
    """

    __slots__ = ("_count", "_prefix")

    def __init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        self._prefix = secrets.token_hex(10)
        self._count = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._count) & 0xFFFFFFFFFFFF:012x}"


_ids = RequestIds()
os.register_at_fork(after_in_child=_ids.reseed)


def request_id(headers: Mapping[str, str]) -> str:
    """The sender's ``X-Request-Id`` when it is a sane token, else a new one."""
    given = headers.get("X-Request-Id")
    if given and _REQUEST_ID.match(given):
        return given
    return _ids.next()


def _known_source(request: web.Request, name: str) -> bool:
    """A hook's source goes into the log context only when it is configured: an unknown
    name is anyone's text (its rejection logs a bounded excerpt of it)."""
    state = request.app.get(INGRESS)
    return state is not None and name in state.current.live.ingress.sources


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    given = request_id(request.headers)
    request[REQUEST_ID] = given
    # One bind a request. aiohttp runs each request in a task of its own, with a copy of
    # the connection's context: nothing bound for an earlier request is left to clear.
    source = request.match_info.get("source")
    if source is not None and _known_source(request, source):
        structlog.contextvars.bind_contextvars(request_id=given, source=source)
    else:
        structlog.contextvars.bind_contextvars(request_id=given)
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
    response.headers["X-Request-Id"] = given
    return response
