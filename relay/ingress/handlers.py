"""HTTP handlers: short, they check the request and hand the body to the pipeline."""

from __future__ import annotations

import asyncio
import math
import re

import msgspec
import structlog
from aiohttp import web

from relay.bus import BusError, RecordTooLarge
from relay.ingest import Ingest, Received
from relay.ingress.auth import AuthError, presented_token, token_matches
from relay.ingress.body import BodyTooLarge, BrokenBody, is_json_content_type, read_limited
from relay.ingress.errors import error_response
from relay.ingress.state import INGRESS, REQUEST_ID, UNKNOWN_SOURCE, IngressState, SourceEntry
from relay.logs import LogBudget
from relay.metrics import REQUESTS, exposition
from relay.providers import PROVIDERS

log = structlog.get_logger("relay.ingress")


class AcceptedBody(msgspec.Struct, frozen=True, omit_defaults=True):
    accepted: int
    ids: list[str]
    deadlettered: str | None = None


_encoder = msgspec.json.Encoder()
RETRY_AFTER_SECONDS = "5"


def _resolve_kind(entry: SourceEntry, kind: str | None) -> str | web.Response | None:
    provider = PROVIDERS[entry.provider]
    if provider.canonical_kind is not None:
        canonical = provider.canonical_kind(kind) if kind is not None else None
        if canonical is None:
            detail = (
                f"unknown {provider.title} kind {kind!r}"
                if kind
                else f"{provider.title} hooks need a kind in the URL"
            )
            return error_response(404, "unknown_kind", detail)
        return canonical
    if kind is not None:
        return error_response(
            404, "unknown_kind", f"{entry.provider} sources take no kind in the URL"
        )
    return None


UNAUTHORIZED_DETAIL = "missing or invalid credentials"


def _unauthorized(state: IngressState, detail: str) -> web.Response:
    """One answer for an unknown source and for every wrong credential, so a stranger learns
    nothing (which sources exist, which check failed) unless ``debug_errors`` is on."""
    return error_response(
        401, "unauthorized", detail if state.debug_errors else UNAUTHORIZED_DETAIL
    )


_STRANGERS = LogBudget(limit=20, window=60.0)
"""Unknown sources and failed credentials are anyone's to send: a few lines a minute (the
counts in relay_requests_total stay exact)."""


def _stranger(**fields: object) -> None:
    dropped = _STRANGERS.take()
    if dropped is None:
        return
    if dropped:
        fields["suppressed"] = dropped
    log.info("hook_rejected", **fields)


def _overloaded(detail: str) -> web.Response:
    return error_response(503, "overloaded", detail, headers={"Retry-After": "1"})


async def receive_hook(request: web.Request) -> web.Response:
    state: IngressState = request.app[INGRESS]
    name = request.match_info["source"]
    entry = state.sources.get(name)
    if entry is None:
        REQUESTS.labels(UNKNOWN_SOURCE, "unknown_source").inc()
        _stranger(reason="unknown_source", source=name[:64])
        if state.debug_errors:
            return error_response(404, "unknown_source", f"no source named {name!r}")
        return _unauthorized(state, "")
    structlog.contextvars.bind_contextvars(source=name)
    try:
        entry.auth.check_peer(request.remote)
        entry.auth.check_token(request.query, request.headers)
    except AuthError as exc:
        entry.count("unauthorized")
        _stranger(reason="unauthorized", detail=str(exc))
        return _unauthorized(state, str(exc))
    # Backpressure, refused before the body is read rather than queued without bound: the
    # process's limit, and this source's share of it, so one source's slow clients cannot
    # take every slot.
    if state.in_flight >= state.max_in_flight:
        entry.count("overloaded")
        log.warning("hook_rejected", reason="overloaded", in_flight=state.in_flight)
        return _overloaded("too many requests in progress; retry later")
    if entry.in_flight >= entry.max_in_flight:
        entry.count("overloaded")
        log.warning("hook_rejected", reason="source_overloaded", source_in_flight=entry.in_flight)
        return _overloaded(f"too many requests in progress for source {name!r}; retry later")
    state.in_flight += 1
    entry.in_flight += 1
    try:
        outcome, response = await _receive(request, state, entry)
    finally:
        state.in_flight -= 1
        entry.in_flight -= 1
    entry.count(outcome)
    if outcome in _LOGGED_HERE:
        log.info("hook_rejected", reason=outcome, status=response.status)
    return response


# Rejections whose branch does not log (the others log with their detail).
_LOGGED_HERE = frozenset(
    {"unknown_kind", "rate_limited", "unsupported_media_type", "bad_body", "malformed_json"}
)


async def _receive(
    request: web.Request, state: IngressState, entry: SourceEntry
) -> tuple[str, web.Response]:
    """Check the request, hand it to the pipeline; returns (outcome label, response)."""
    kind = _resolve_kind(entry, request.match_info.get("kind"))
    if isinstance(kind, web.Response):
        return "unknown_kind", kind
    if entry.limiter is not None and (wait := entry.limiter.try_acquire()) > 0:
        return "rate_limited", error_response(
            429,
            "too_many_requests",
            f"source {entry.name!r} is over its rate limit",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    content_type = request.headers.get("Content-Type")
    if not is_json_content_type(content_type):
        return "unsupported_media_type", error_response(
            415, "unsupported_media_type", f"{content_type!r} is not JSON"
        )
    try:
        if request.content.is_eof():  # the whole body is in already: no timer to arm
            body = await read_limited(request, state.max_body_bytes)
        else:
            async with asyncio.timeout(state.body_timeout):
                body = await read_limited(request, state.max_body_bytes)
    except BodyTooLarge as exc:
        log.info("hook_rejected", reason="payload_too_large")
        return "payload_too_large", error_response(413, "payload_too_large", str(exc))
    except TimeoutError:
        log.info("hook_rejected", reason="body_timeout")
        return "body_timeout", error_response(
            408, "request_timeout", f"the body did not arrive within {state.body_timeout:g}s"
        )
    except BrokenBody as exc:
        return "bad_body", error_response(400, "bad_request", str(exc))
    try:
        entry.auth.check_signature(body, request.headers)
    except AuthError as exc:
        log.info("hook_rejected", reason="bad_signature", detail=str(exc))
        return "bad_signature", _unauthorized(state, str(exc))
    received = Received(
        source=entry.name,
        provider=entry.provider,
        body=body,
        kind=kind,
        content_type=content_type,
        request_id=request[REQUEST_ID],
        delivery_id=_delivery_id(request.headers.get(header))
        if (header := PROVIDERS[entry.provider].delivery_header)
        else None,
    )
    return await _ingest(state.ingest, received)


def _delivery_id(value: str | None) -> str | None:
    """The provider's delivery id when it is a sane token (a UUID, say); otherwise none."""
    if value is None or not _DELIVERY_ID.match(value):
        return None
    return value


_DELIVERY_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


async def _ingest(ingest: Ingest, received: Received) -> tuple[str, web.Response]:
    try:
        outcome = await ingest.ingest(received)
    except RecordTooLarge as exc:
        log.warning("hook_rejected", reason="too_large_for_bus", detail=str(exc))
        return "payload_too_large", error_response(413, "payload_too_large", str(exc))
    except BusError as exc:
        log.warning("bus_unavailable", error=str(exc))
        return "unavailable", error_response(
            503,
            "unavailable",
            "the event bus is unavailable; retry later",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
        )
    if outcome.malformed is not None:
        return "malformed_json", error_response(400, "malformed_json", outcome.malformed)
    if outcome.deadletter_reason is not None:
        log.info("hook_deadlettered", reason=outcome.deadletter_reason)
        label = "deadlettered"
    else:
        label = "accepted"
    response = web.Response(
        status=202,
        body=_encoder.encode(
            AcceptedBody(len(outcome.ids), outcome.ids, outcome.deadletter_reason)
        ),
        content_type="application/json",
    )
    return label, response


async def metrics(request: web.Request) -> web.Response:
    token = request.app[INGRESS].metrics_token
    if token is not None:
        presented = presented_token({}, request.headers)
        if presented is None or not token_matches(presented, [token]):
            return error_response(
                401,
                "unauthorized",
                "missing or invalid metrics token (Authorization: Bearer)",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
    body, content_type = exposition()
    response = web.Response(body=body)
    response.headers["Content-Type"] = content_type
    return response


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready when accepting and the bus can take records; says whether Kafka is spooled."""
    state: IngressState = request.app[INGRESS]
    bus = state.ingest.bus
    ready = state.accepting and bus.ready()
    body = {"status": "ready" if ready else "not_ready", "bus": bus.name}
    mode = getattr(bus, "mode", None)
    if mode is not None:
        body["mode"] = mode
    if not state.accepting:
        body["reason"] = "shutting down"
    return web.json_response(body, status=200 if ready else 503)
