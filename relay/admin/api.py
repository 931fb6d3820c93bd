"""The admin endpoints: ``POST /admin/reload`` and the JSON API under ``/admin/api/``.

Each takes ``Authorization: Bearer <admin.token>``: off (404) without ``admin.token``, a
missing or wrong token is 401. Lists page with ``limit`` and ``cursor`` (``next_cursor``
in the answer, null on the last page). A handler's docstring is its description in the
AsyncAPI document (relay.contracts reads :data:`ROUTES`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
from aiohttp import web

from relay.admin.keys import OPS, RELOAD, ReloadRefused
from relay.admin.ops import BadRequest, NotFound, NotHere, Operations
from relay.index.store import Filters
from relay.ingress.auth import presented_token, token_matches
from relay.ingress.responses import error_response
from relay.ingress.state import INGRESS
from relay.units import seconds

AUTHORIZATION = (
    "Authorization: Bearer <admin.token>; 404 without admin.token, 401 for a wrong token"
)
_encoder = msgspec.json.Encoder()

Handler = Callable[[web.Request], Awaitable[web.Response]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encoder.encode(data), status=status, content_type="application/json")


def _refused(request: web.Request) -> web.Response | None:
    """The answer when the caller may not use the admin endpoints; None when it may."""
    token = request.app[INGRESS].current.live.ingress.admin_token
    if token is None:
        return error_response(404, "not_found", "admin endpoints are off (no admin.token)")
    presented = presented_token({}, request.headers)
    if presented is None or not token_matches(presented, [token]):
        return error_response(401, "unauthorized", "missing or invalid admin token")
    return None


def guarded(handler: Callable[[web.Request, Operations], Awaitable[Any]]) -> Handler:
    """Token check, then the handler; the operations' errors become JSON errors."""

    @functools.wraps(handler)
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
            return error_response(404, exc.code, str(exc))
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
    """Search the index, newest first: type (a glob ending in * too), source, key (the
    conversation's partitionkey), phone (E.164, digits or a chat id), since, until (RFC 3339
    or a duration ago), limit (<= 500), cursor; answers {"events": [...], "next_cursor": ...}.
    """
    filters, limit, cursor = filters_from(request.query)
    page = await ops.search(filters, limit, cursor)
    return {"events": page.events, "next_cursor": page.next_cursor}


async def get_event(request: web.Request, ops: Operations) -> Any:
    """One event: its index row, the canonical event, its raw body and where it is
    (matched_by: adjacent, delivery or nearest), its attempts and dead letters."""
    return await ops.event(request.match_info["id"])


async def list_subscribers(request: web.Request, ops: Operations) -> Any:
    """Each subscriber: name, url without credentials or query values, breaker state,
    disabled, lag, delivered/failed attempts and p50/p99 latency over 5 minutes."""
    return {"subscribers": await ops.subscribers()}


async def list_sources(request: web.Request, ops: Operations) -> Any:
    """Each source: provider, requests by outcome, last seen."""
    return {"sources": await ops.sources()}


async def list_deadletters(request: web.Request, ops: Operations) -> Any:
    """Dead letters newest first (subscriber, since, limit), each with redelivered: whether
    it was delivered after it was written."""
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
    """Redeliver its dead letters: {"ids": [event ids]} or {"since": "<RFC 3339>"} (written
    since then); each event once, skipping those delivered since; 202 {"redriving": N}."""
    body: RedriveBody = await _body(request, RedriveBody)
    if (body.ids is None) == (body.since is None):
        raise BadRequest('give either "ids": [...] or "since": "<RFC 3339>"')
    name = request.match_info["name"]
    count = await ops.redrive(name, ids=body.ids, since_ms=time_param(body.since, "since"))
    return _json({"subscriber": name, "redriving": count}, status=202)


async def replay(request: web.Request, ops: Operations) -> Any:
    """Deliver the event again to {"subscriber": NAME}; 202."""
    body: ReplayBody = await _body(request, ReplayBody)
    event_id = request.match_info["id"]
    await ops.replay(event_id, body.subscriber)
    return _json({"event": event_id, "subscriber": body.subscriber, "replaying": 1}, status=202)


async def disable(request: web.Request, ops: Operations) -> Any:
    """Stop delivering to a subscriber until it is enabled."""
    name = request.match_info["name"]
    return {"subscriber": name, "disabled": True, "was_enabled": await ops.disable(name)}


async def enable(request: web.Request, ops: Operations) -> Any:
    """Resume a subscriber disabled by a 410 or an operator (at the event that got the 410)."""
    name = request.match_info["name"]
    return {"subscriber": name, "enabled": True, "was_disabled": await ops.enable(name)}


async def reload(request: web.Request) -> web.Response:
    """Reload sources, routes and subscribers from the file; 409 reload_refused when the new
    configuration is refused (the running one stays)."""
    refused = _refused(request)
    if refused is not None:
        return refused
    try:
        result = await request.app[RELOAD]()
    except ReloadRefused as exc:
        return error_response(409, "reload_refused", str(exc))
    return _json({"reloaded": True, **msgspec.structs.asdict(result)})


ROUTES: tuple[web.RouteDef, ...] = (
    web.post("/admin/reload", reload),
    web.get("/admin/api/events", guarded(list_events)),
    web.get("/admin/api/events/{id}", guarded(get_event)),
    web.post("/admin/api/events/{id}/replay", guarded(replay)),
    web.get("/admin/api/subscribers", guarded(list_subscribers)),
    web.post("/admin/api/subscribers/{name}/redrive", guarded(redrive)),
    web.post("/admin/api/subscribers/{name}/enable", guarded(enable)),
    web.post("/admin/api/subscribers/{name}/disable", guarded(disable)),
    web.get("/admin/api/deadletters", guarded(list_deadletters)),
    web.get("/admin/api/sources", guarded(list_sources)),
)
"""Every admin endpoint; relay.app adds them to the router, relay.contracts describes them."""
