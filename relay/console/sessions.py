"""Console logins: the admin token once, then an HttpOnly, SameSite=Strict session cookie.

Sessions live in memory (a restart logs everyone out) and are bound to the admin token
they were opened with: changing ``admin.token`` (a reload) ends them all. Every session
has its own CSRF token, which every POST form carries and the server compares.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

import msgspec
from aiohttp import web

COOKIE = "relay_console"
LOGIN_COOKIE = "relay_console_login"
"""Before login: a random value the login form repeats (login CSRF, double submit)."""
MAX_SESSIONS = 1000


class Session(msgspec.Struct, kw_only=True):
    csrf: str
    expires: float
    token_hash: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._sessions: dict[str, Session] = {}

    def open(self, token: str) -> tuple[str, Session]:
        now = time.time()
        for key, session in list(self._sessions.items()):
            if session.expires < now:
                del self._sessions[key]
        if len(self._sessions) >= MAX_SESSIONS:  # the oldest go first
            for key in sorted(self._sessions, key=lambda k: self._sessions[k].expires)[:100]:
                del self._sessions[key]
        key = secrets.token_urlsafe(32)
        session = Session(
            csrf=secrets.token_urlsafe(32), expires=now + self.ttl, token_hash=token_hash(token)
        )
        self._sessions[key] = session
        return key, session

    def find(self, request: web.Request, token: str) -> Session | None:
        key = request.cookies.get(COOKIE)
        if not key:
            return None
        session = self._sessions.get(key)
        if session is None:
            return None
        if session.expires < time.time() or not hmac.compare_digest(
            session.token_hash, token_hash(token)
        ):
            del self._sessions[key]
            return None
        return session

    def close(self, request: web.Request) -> None:
        key = request.cookies.get(COOKIE)
        if key:
            self._sessions.pop(key, None)


def set_cookie(
    response: web.StreamResponse, request: web.Request, name: str, value: str, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/console/",
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )


def csrf_ok(session: Session, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(session.csrf, presented)
