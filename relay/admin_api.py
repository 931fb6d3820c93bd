"""The admin API (JSON under ``/admin/api/``, ``Authorization: Bearer <admin.token>``).

Off (404) without ``admin.token``; a missing or wrong token is 401. Lists page with
``limit`` and ``cursor`` (``next_cursor`` in the answer, null on the last page).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
from aiohttp import web

from relay.admin_ops import BadRequest, NotFound, NotHere, Operations
from relay.index.store import Filters
from relay.ingress.admin import _refused
from relay.ingress.responses import error_response
from relay.units import seconds

OPS = web.AppKey("operations", Operations)
_encoder = msgspec.json.Encoder()

Handler = Callable[[web.Request], Awaitable[web.Response]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encoder.encode(data), status=status, content_type="application/json")


def guarded(handler: Callable[[web.Request, Operations], Awaitable[Any]]) -> Handler:
    """Token check, then the handler; the operations' errors become JSON errors."""

    async def wrapped(request: web.Request) -> web.Response:
        refused = _refused(request)
        if refused is not None:
            return refused
        ops = request.app.get(OPS)
        if ops is None:
            return error_response(404, "not_found", "the admin API is not served here")
        try:
            answer = await handler(request, ops)
        except NotHere as exc:
            return error_response(404, "not_here", str(exc))
        except NotFound as exc:
            return error_response(404, "not_found", str(exc))
        except BadRequest as exc:
            return error_response(400, "bad_request", str(exc))
        return answer if isinstance(answer, web.Response) else _json(answer)

    return wrapped


def time_param(text: str | None, name: str) -> int | None:
    if not text:
        return None
    try:
        return int((time.time() - seconds(text)) * 1000)  # a duration ago: 2h, 30m
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name}: expected an RFC 3339 time or a duration ago (2h)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def filters_from(query: Any) -> tuple[Filters, int, str | None]:
    try:
        limit = int(query.get("limit") or 50)
    except ValueError:
        raise BadRequest("limit: expected a number") from None
    filters = Filters(
        type=query.get("type") or None,
        source=query.get("source") or None,
        key=query.get("key") or None,
        phone=query.get("phone") or None,
        since_ms=time_param(query.get("since"), "since"),
        until_ms=time_param(query.get("until"), "until"),
    )
    return filters, limit, query.get("cursor") or None


async def list_events(request: web.Request, ops: Operations) -> Any:
    filters, limit, cursor = filters_from(request.query)
    page = await ops.search(filters, limit, cursor)
    return {"events": page.events, "next_cursor": page.next_cursor}


async def get_event(request: web.Request, ops: Operations) -> Any:
    return await ops.event(request.match_info["id"])


async def list_subscribers(request: web.Request, ops: Operations) -> Any:
    return {"subscribers": await ops.subscribers()}


async def list_sources(request: web.Request, ops: Operations) -> Any:
    return {"sources": await ops.sources()}


async def list_deadletters(request: web.Request, ops: Operations) -> Any:
    rows = await ops.deadletters(
        subscriber=request.query.get("subscriber") or None,
        since_ms=time_param(request.query.get("since"), "since"),
        limit=min(int(request.query.get("limit") or 200), 1000),
    )
    done = await ops.redelivered(rows)
    return {
        "deadletters": [
            {**msgspec.structs.asdict(row), "redelivered": (row.event_id, row.subscriber) in done}
            for row in rows
        ]
    }


class RedriveBody(msgspec.Struct, forbid_unknown_fields=True):
    ids: list[str] | None = None
    since: str | None = None


class ReplayBody(msgspec.Struct, forbid_unknown_fields=True):
    subscriber: str


async def _body(request: web.Request, kind: type[Any]) -> Any:
    try:
        return msgspec.json.decode(await request.read() or b"{}", type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise BadRequest(f"body: {exc}") from None


async def redrive(request: web.Request, ops: Operations) -> Any:
    body: RedriveBody = await _body(request, RedriveBody)
    if (body.ids is None) == (body.since is None):
        raise BadRequest('give either "ids": [...] or "since": "<RFC 3339>"')
    name = request.match_info["name"]
    count = await ops.redrive(name, ids=body.ids, since_ms=time_param(body.since, "since"))
    return _json({"subscriber": name, "redriving": count}, status=202)


async def replay(request: web.Request, ops: Operations) -> Any:
    body: ReplayBody = await _body(request, ReplayBody)
    event_id = request.match_info["id"]
    await ops.replay(event_id, body.subscriber)
    return _json({"event": event_id, "subscriber": body.subscriber, "replaying": 1}, status=202)


async def disable(request: web.Request, ops: Operations) -> Any:
    name = request.match_info["name"]
    return {"subscriber": name, "disabled": True, "was_enabled": await ops.disable(name)}


def add_api_routes(app: web.Application) -> None:
    router = app.router
    router.add_get("/admin/api/events", guarded(list_events))
    router.add_get("/admin/api/events/{id}", guarded(get_event))
    router.add_post("/admin/api/events/{id}/replay", guarded(replay))
    router.add_get("/admin/api/subscribers", guarded(list_subscribers))
    router.add_post("/admin/api/subscribers/{name}/redrive", guarded(redrive))
    router.add_post("/admin/api/subscribers/{name}/disable", guarded(disable))
    router.add_get("/admin/api/sources", guarded(list_sources))
    router.add_get("/admin/api/deadletters", guarded(list_deadletters))
