"""Every answer relay's HTTP side gives: the ERRORS table, Rejected, and the JSON bodies.

A check that refuses a request raises :class:`Rejected`; the hook handler turns it into
an ``{"error": code, "detail": ...}`` response, logs it and counts it, once. ``ERRORS`` is
the whole vocabulary: the error table of docs/webhooks.md and the AsyncAPI ``hookError`` message are
read from it (a test keeps the page in step).
"""

from __future__ import annotations

from typing import Literal

import msgspec
from aiohttp import web

from relay.ingress.request import Answer


class ErrorBody(msgspec.Struct, frozen=True):
    error: str
    detail: str


class AcceptedBody(msgspec.Struct, frozen=True, omit_defaults=True):
    accepted: int
    ids: list[str]
    deadlettered: str | None = None


class ErrorCode(msgspec.Struct, frozen=True):
    status: int
    code: str
    when: str
    hook: bool = True
    """Can a hook request get it (the AsyncAPI ``hookError`` lists those)."""


ERRORS: tuple[ErrorCode, ...] = (
    ErrorCode(
        400,
        "malformed_json",
        "the body is not JSON (it is still kept on the raw and dead-letter topics)",
    ),
    ErrorCode(
        400,
        "bad_request",
        "the body could not be read as sent (e.g. an undecodable `Content-Encoding: gzip` stream)",
    ),
    ErrorCode(
        401,
        "unauthorized",
        "no such source, token missing or wrong, signature missing, wrong or stale, address "
        'not allowed: all the same body, `{"error": "unauthorized", "detail": "missing or '
        'invalid credentials"}`, so a stranger cannot learn which sources exist or which check '
        "failed (with `debug_errors: true`: the reason, and `404 unknown_source` for an "
        "unknown source)",
    ),
    ErrorCode(404, "unknown_source", "no such source, with `debug_errors: true` only"),
    ErrorCode(
        404,
        "unknown_kind",
        "(after authentication) a PlugChat URL without a known kind, or a Chatwoot URL with one",
    ),
    ErrorCode(404, "not_found", "no such path; admin endpoints without `admin.token`"),
    ErrorCode(405, "method_not_allowed", "anything but POST on a hook (`Allow` header says so)"),
    ErrorCode(408, "request_timeout", "the body did not arrive within `limits.body_timeout`"),
    ErrorCode(
        413,
        "payload_too_large",
        "body over `limits.max_body_bytes` (after decompression), refused before reading it "
        "all; or a record over `kafka.max_record_bytes`",
    ),
    ErrorCode(
        415,
        "unsupported_media_type",
        "a `Content-Type` that is not JSON (`application/json`, `text/json`, "
        "`application/*+json`; a missing one is accepted)",
    ),
    ErrorCode(
        429,
        "too_many_requests",
        "the source is over its `rate_limit`; `Retry-After` says when to retry",
    ),
    ErrorCode(
        503,
        "overloaded",
        "more than `limits.max_in_flight` hook requests in progress, or more than this "
        "source's share (`sources.<name>.max_in_flight`); `Retry-After: 1`",
    ),
    ErrorCode(
        503,
        "unavailable",
        "the bus could not make the records durable (spool full, disk error); `Retry-After: 5`",
    ),
    ErrorCode(409, "reload_refused", "`POST /admin/reload`: the new file was not taken", False),
    ErrorCode(404, "unknown_subscriber", "`.../subscribers/{name}/enable`: no such name", False),
    ErrorCode(
        404,
        "not_here",
        "an admin API call this process cannot answer (it runs `--role ingress`: no index, "
        "no delivery)",
        False,
    ),
    ErrorCode(500, "internal_error", "a bug; the body was not lost", False),
)
_KNOWN = frozenset(error.code for error in ERRORS)

# Codes for the statuses aiohttp raises on its own (unknown path, wrong method, ...).
_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}

Level = Literal["info", "warning"]


class Rejected(Exception):
    """A refused request: what the sender is told, and how it is counted and logged.

    ``outcome`` is the ``relay_requests_total`` label and, unless ``reason`` says
    otherwise, the log's ``reason``; ``logged`` is the log's detail when it differs from
    what the sender may see.
    """

    def __init__(
        self,
        status: int,
        code: str,
        outcome: str,
        detail: str,
        headers: dict[str, str] | None = None,
        *,
        logged: str | None = None,
        reason: str | None = None,
        level: Level = "info",
    ) -> None:
        assert code in _KNOWN, code  # every code is in ERRORS, so the docs list it
        super().__init__(detail)
        self.status = status
        self.code = code
        self.outcome = outcome
        self.detail = detail
        self.headers = headers
        self.logged = detail if logged is None else logged
        self.reason = outcome if reason is None else reason
        self.level: Level = level

    def response(self) -> web.Response:
        return error_response(self.status, self.code, self.detail, self.headers)

    def answer(self) -> Answer:
        return error_answer(self.status, self.code, self.detail, self.headers)


_encoder = msgspec.json.Encoder()


def error_answer(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> Answer:
    return Answer(status, _encoder.encode(ErrorBody(code, detail)), headers)


def error_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=_encoder.encode(ErrorBody(code, detail)),
        content_type="application/json",
        headers=headers,
    )


def from_http_exception(exc: web.HTTPException) -> web.Response:
    headers = {
        name: value
        for name, value in exc.headers.items()
        if name.lower() in ("allow", "retry-after", "www-authenticate")
    }
    return error_response(
        exc.status, _CODES.get(exc.status, "http_error"), exc.reason, headers or None
    )


def hook_error_summary() -> str:
    """The AsyncAPI ``hookError`` summary: the codes a hook request can get, by status."""
    by_status: dict[int, list[str]] = {}
    for error in ERRORS:
        if error.hook:
            by_status.setdefault(error.status, []).append(error.code)
    return ", ".join(f"{status} {'|'.join(codes)}" for status, codes in sorted(by_status.items()))


def docs_error_table() -> str:
    """The error table of docs/webhooks.md, one row per code of ``ERRORS``."""
    rows = ["| status | code | when |", "|---|---|---|"]
    rows += [f"| {e.status} | `{e.code}` | {e.when} |" for e in sorted(ERRORS, key=_order)]
    return "\n".join(rows)


def _order(error: ErrorCode) -> tuple[int, int]:
    return error.status, ERRORS.index(error)
