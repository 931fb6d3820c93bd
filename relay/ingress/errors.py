"""JSON error bodies for every failure: ``{"error": code, "detail": ...}``."""

from __future__ import annotations

import msgspec
from aiohttp import web


class ErrorBody(msgspec.Struct, frozen=True):
    error: str
    detail: str


_encoder = msgspec.json.Encoder()

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
