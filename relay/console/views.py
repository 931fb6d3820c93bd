"""The console's pages and form actions. Every page needs a session; every POST its CSRF."""

from __future__ import annotations

import functools
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp_jinja2
import msgspec
from aiohttp import web

from relay.admin.api import filters_from, time_param
from relay.admin.keys import CONFIG, OPS
from relay.admin.ops import BadRequest, NotFound, NotHere, Operations
from relay.console.sessions import (
    COOKIE,
    LOGIN_COOKIE,
    Session,
    Sessions,
    csrf_ok,
    set_cookie,
)
from relay.ingress.auth import token_matches

SESSIONS = web.AppKey("console_sessions", Sessions)
STATIC = Path(__file__).parent / "static"
_STATIC_TYPES = {"console.js": "text/javascript", "console.css": "text/css"}
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

Page = Callable[[web.Request, Operations, Session], Awaitable[Any]]


class _Refusal(Exception):
    def __init__(self, status: int, text: str) -> None:
        self.status, self.text = status, text


def _plain(status: int, text: str) -> web.Response:
    """Errors as plain text: the hook listener's middleware would make HTTP errors JSON."""
    response = web.Response(status=status, text=text + "\n")
    response.headers.update(_HEADERS)
    return response


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, **_HEADERS})


def _token(request: web.Request) -> str:
    token = request.app[CONFIG]().admin.token
    if token is None:
        raise _Refusal(404, "the console is off (no admin.token)")
    return token


def refusing(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except _Refusal as refusal:
            return _plain(refusal.status, refusal.text)

    return wrapped


def _secure(response: web.StreamResponse) -> web.StreamResponse:
    response.headers.update(_HEADERS)
    return response


def _back(path: str, notice: str | None = None, error: str | None = None) -> web.Response:
    query = {k: v for k, v in (("notice", notice), ("error", error)) if v}
    return _redirect(path + ("?" + urlencode(query) if query else ""))


def page(handler: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    @refusing
    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        token = _token(request)
        session = request.app[SESSIONS].find(request, token)
        if session is None:
            if request.method != "GET":
                return _plain(403, "log in first")
            return _redirect("/console/login?" + urlencode({"next": request.path_qs}))
        if request.method == "POST":
            form = await request.post()
            presented = form.get("csrf")
            if not csrf_ok(session, presented if isinstance(presented, str) else None):
                return _plain(403, "the form's CSRF token is missing or stale: reload the page")
        ops = request.app[OPS]
        try:
            answer = await handler(request, ops, session)
        except (NotHere, NotFound) as exc:
            return _plain(404, str(exc))
        if isinstance(answer, web.StreamResponse):
            return _secure(answer)
        template, context = answer
        context.update(
            csrf=session.csrf,
            notice=request.query.get("notice"),
            error=request.query.get("error"),
            path=request.path,
        )
        return _secure(aiohttp_jinja2.render_template(template, request, context))

    return wrapped


@refusing
async def to_console(request: web.Request) -> web.StreamResponse:
    _token(request)
    return _redirect("/console/")


def _next(value: Any) -> str:
    """Only a path inside the console: never an open redirect."""
    text = value if isinstance(value, str) else ""
    return text if text.startswith("/console/") and not text.startswith("//") else "/console/"


@refusing
async def login_page(request: web.Request) -> web.StreamResponse:
    _token(request)
    nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    response = aiohttp_jinja2.render_template(
        "login.html",
        request,
        {
            "nonce": nonce,
            "next": _next(request.query.get("next")),
            "failed": "failed" in request.query,
        },
    )
    set_cookie(response, request, LOGIN_COOKIE, nonce, max_age=3600)
    return _secure(response)


@refusing
async def login(request: web.Request) -> web.StreamResponse:
    token = _token(request)
    form = await request.post()
    nonce, presented = form.get("nonce"), form.get("token")
    cookie = request.cookies.get(LOGIN_COOKIE)
    if not (isinstance(nonce, str) and cookie and hmac.compare_digest(cookie, nonce)):
        return _plain(403, "the login form is stale: reload it")
    if not isinstance(presented, str) or not token_matches(presented.strip(), [token]):
        return _redirect("/console/login?failed=1")
    key, _ = request.app[SESSIONS].open(token)
    response = _redirect(_next(form.get("next")))
    set_cookie(response, request, COOKIE, key, max_age=int(request.app[SESSIONS].ttl))
    response.del_cookie(LOGIN_COOKIE, path="/console/")
    return response


async def logout(request: web.Request, ops: Operations, session: Session) -> Any:
    request.app[SESSIONS].close(request)
    response = _redirect("/console/login")
    response.del_cookie(COOKIE, path="/console/")
    return response


async def overview(request: web.Request, ops: Operations, session: Session) -> Any:
    """The operator console (HTML): log in with the admin token; an HttpOnly,
    SameSite=Strict session cookie and a CSRF token on every form. 404 without admin.token.
    """
    subscribers = await ops.subscribers()
    for subscriber in subscribers:
        try:
            subscriber["spark"] = await ops.sparkline(subscriber["name"])
        except NotHere:
            subscriber["spark"] = []
    return "overview.html", {"sources": await ops.sources(), "subscribers": subscribers}


async def events(request: web.Request, ops: Operations, session: Session) -> Any:
    query = request.query
    searched = any(query.get(k) for k in ("key", "phone", "type", "source", "since", "until"))
    context: dict[str, Any] = {"q": dict(query), "events": [], "next": None, "searched": searched}
    try:
        filters, limit, cursor = filters_from(query)
        result = await ops.search(filters, limit, cursor)
    except BadRequest as exc:
        context["error_text"] = str(exc)
        return "events.html", context
    context["events"] = result.events
    if result.next_cursor:
        context["next"] = "?" + urlencode({**dict(query), "cursor": result.next_cursor})
    return "events.html", context


def _pretty(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


async def event(request: web.Request, ops: Operations, session: Session) -> Any:
    detail = await ops.event(request.match_info["id"])
    event_json = (
        json.dumps(detail["event"], indent=2, ensure_ascii=False) if detail["event"] else None
    )
    raw = detail["raw"]
    return "event.html", {
        "row": detail["indexed"],
        "event_json": event_json,
        "raw": raw,
        "raw_pretty": _pretty(raw["body"]) if raw else None,
        "attempts": detail["attempts"],
        "deadletters": detail["deadletters"],
        "subscribers": [s.name for s in ops.config.subscribers],
    }


async def replay(request: web.Request, ops: Operations, session: Session) -> Any:
    event_id = request.match_info["id"]
    form = await request.post()
    name = str(form.get("subscriber") or "")
    try:
        await ops.replay(event_id, name)
    except BadRequest as exc:
        return _back(f"/console/events/{event_id}", error=str(exc))
    return _back(f"/console/events/{event_id}", notice=f"replaying to {name}")


async def deadletters(request: web.Request, ops: Operations, session: Session) -> Any:
    subscriber = request.query.get("subscriber") or None
    rows = await ops.deadletters(subscriber=subscriber, limit=500)
    done = await ops.redelivered(rows)
    return "deadletters.html", {
        "rows": [
            {**msgspec.structs.asdict(r), "redelivered": (r.event_id, r.subscriber) in done}
            for r in rows
        ],
        "subscriber": subscriber,
        "subscribers": [s.name for s in ops.config.subscribers],
    }


async def redrive(request: web.Request, ops: Operations, session: Session) -> Any:
    form = await request.post()
    back = "/console/deadletters"
    scope = str(form.get("scope") or "selected")
    total = 0
    try:
        if scope == "selected":
            chosen: dict[str, list[str]] = {}
            for value in form.getall("pick", []):
                name, _, event_id = str(value).partition("|")
                chosen.setdefault(name, []).append(event_id)
            if not chosen:
                return _back(back, error="nothing selected")
            for name, ids in chosen.items():
                total += await ops.redrive(name, ids=ids)
        else:
            name = str(form.get("subscriber") or "")
            since = str(form.get("since") or "") if scope == "since" else "1970-01-01T00:00:00Z"
            total = await ops.redrive(name, since_ms=time_param(since, "since"))
    except BadRequest as exc:
        return _back(back, error=str(exc))
    return _back(back, notice=f"redriving {total} dead letter{'s' if total != 1 else ''}")


async def toggle(request: web.Request, ops: Operations, session: Session) -> Any:
    name, action = request.match_info["name"], request.match_info["action"]
    if action == "enable":
        await ops.enable(name)
    elif action == "disable":
        await ops.disable(name)
    else:
        return _plain(404, f"no action {action!r}")
    return _back("/console/", notice=f"{name} {action}d")


async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    content_type = _STATIC_TYPES.get(name)
    if content_type is None:
        return _plain(404, "no such file")
    response = web.Response(body=(STATIC / name).read_bytes(), content_type=content_type)
    response.headers["Cache-Control"] = "max-age=300"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
