"""The hook handler: checks in order, then the pipeline, then 202.

Each check raises :class:`~relay.ingress.responses.Rejected`; :func:`answer_hook` turns
it into the answer, logs it and counts it, in one place. It takes a transport-neutral
:class:`~relay.ingress.request.HookRequest`: the aiohttp handlers here and the lean
server (:mod:`relay.ingress.lean`) are thin adapters around it.
"""

from __future__ import annotations

import asyncio
import math
import re

import msgspec
import structlog
from aiohttp import web

from relay.bus import BusError, RecordTooLarge
from relay.ingress.auth import AuthError
from relay.ingress.body import BodyTooLarge, BrokenBody, is_json_content_type
from relay.ingress.request import AiohttpBody, Answer, HookRequest
from relay.ingress.responses import AcceptedBody, Rejected
from relay.ingress.state import (
    INGRESS,
    REQUEST_ID,
    UNKNOWN_SOURCE,
    IngressSettings,
    IngressState,
    SourceEntry,
)
from relay.live import Live
from relay.logs import LogBudget
from relay.metrics import REQUESTS
from relay.pipeline import Accepted, DeadLettered, Malformed, received_now
from relay.providers import PROVIDERS, Inbound, Provider

log = structlog.get_logger("relay.ingress")

_encoder = msgspec.json.Encoder()
RETRY_AFTER_SECONDS = "5"
UNAUTHORIZED_DETAIL = "missing or invalid credentials"


def _unauthorized(settings: IngressSettings, outcome: str, detail: str) -> Rejected:
    """One answer for an unknown source and for every wrong credential, so a stranger learns
    nothing (which sources exist, which check failed) unless ``debug_errors`` is on."""
    told = detail if settings.debug_errors else UNAUTHORIZED_DETAIL
    return Rejected(401, "unauthorized", outcome, told, logged=detail)


def _overloaded(detail: str, reason: str) -> Rejected:
    headers = {"Retry-After": "1"}
    return Rejected(
        503, "overloaded", "overloaded", detail, headers, reason=reason, level="warning"
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


def _log(rejected: Rejected) -> None:
    if rejected.outcome == "unauthorized":  # a stranger's: within the budget
        _stranger(reason=rejected.reason, detail=rejected.logged)
        return
    log_at = log.warning if rejected.level == "warning" else log.info
    log_at("hook_rejected", reason=rejected.reason, status=rejected.status, detail=rejected.logged)


def _from_aiohttp(request: web.Request) -> HookRequest:
    match = request.match_info
    return HookRequest(
        source=match["source"],
        kind=match.get("kind"),
        headers=request.headers,
        query=request.query,
        peer=lambda: request.remote,
        request_id=request[REQUEST_ID],
        body=AiohttpBody(request),
    )


def _response(answer: Answer) -> web.Response:
    return web.Response(
        status=answer.status,
        body=answer.body,
        content_type="application/json",
        headers=answer.headers,
    )


async def receive_hook(request: web.Request) -> web.Response:
    return _response((await answer_hook(_from_aiohttp(request), request.app[INGRESS]))[1])


async def traced_receive_hook(request: web.Request) -> web.Response:
    """:func:`receive_hook` in a ``receive`` span (the route relay registers when it traces)."""
    state = request.app[INGRESS]
    tracing = state.pipeline.tracing
    assert tracing is not None
    hook = _from_aiohttp(request)
    with tracing.receive(request.headers, hook.source, hook.kind, hook.request_id) as span:
        structlog.contextvars.bind_contextvars(trace_id=tracing.trace_id())
        outcome, answer = await answer_hook(hook, state)
        tracing.answered(span, outcome, answer.status)
        return _response(answer)


async def answer_hook(request: HookRequest, state: IngressState) -> tuple[str, Answer]:
    """The answer to a hook request, and its outcome (the relay_requests_total label)."""
    live = state.current.live  # one read: a reload mid-request changes nothing below
    settings = live.ingress
    name = request.source
    entry = settings.sources.get(name)
    if entry is None:
        REQUESTS.labels(UNKNOWN_SOURCE, "unknown_source").inc()
        _stranger(reason="unknown_source", source=name[:64])
        if settings.debug_errors:
            detail = f"no source named {name!r}"
            rejected = Rejected(404, "unknown_source", "unknown_source", detail)
            return "unknown_source", rejected.answer()
        return "unknown_source", _unauthorized(settings, "unknown_source", "").answer()
    try:
        _admit(request, state, settings, entry)
        state.in_flight += 1
        entry.in_flight += 1
        try:
            label, answer = await _receive(request, state, live, entry)
        finally:
            state.in_flight -= 1
            entry.in_flight -= 1
    except Rejected as rejected:
        entry.count(rejected.outcome)
        _log(rejected)
        return rejected.outcome, rejected.answer()
    entry.count(label)
    return label, answer


def _admit(
    request: HookRequest, state: IngressState, settings: IngressSettings, entry: SourceEntry
) -> None:
    """Credentials, then backpressure: both before the body is read."""
    auth = entry.auth
    try:
        if auth.networks:  # the peer asks the transport: only when a CIDR list is set
            auth.check_peer(request.peer())
        auth.check_token(request.query, request.headers)
    except AuthError as exc:
        raise _unauthorized(settings, "unauthorized", str(exc)) from None
    # Backpressure, refused before the body is read rather than queued without bound: the
    # process's limit, and this source's share of it, so one source's slow clients cannot
    # take every slot.
    if state.in_flight >= settings.max_in_flight:
        raise _overloaded("too many requests in progress; retry later", "overloaded")
    if entry.in_flight >= entry.max_in_flight:
        detail = f"too many requests in progress for source {entry.name!r}; retry later"
        raise _overloaded(detail, "source_overloaded")


def _kind(entry: SourceEntry, provider: Provider, kind: str | None) -> str | None:
    """The canonical URL kind for providers that take one; None for those that do not."""
    if provider.canonical_kind is not None:
        canonical = provider.canonical_kind(kind) if kind is not None else None
        if canonical is None:
            detail = (
                f"unknown {provider.title} kind {kind!r}"
                if kind
                else f"{provider.title} hooks need a kind in the URL"
            )
            raise Rejected(404, "unknown_kind", "unknown_kind", detail)
        return canonical
    if kind is not None:
        detail = f"{entry.provider} sources take no kind in the URL"
        raise Rejected(404, "unknown_kind", "unknown_kind", detail)
    return None


async def _body(request: HookRequest, settings: IngressSettings) -> bytes:
    body = request.body
    try:
        if body.complete():  # the whole body is in already: no timer, no await
            return body.take(settings.max_body_bytes)
        async with asyncio.timeout(settings.body_timeout):
            return await body.read(settings.max_body_bytes)
    except BodyTooLarge as exc:
        raise Rejected(413, "payload_too_large", "payload_too_large", str(exc)) from None
    except TimeoutError:
        detail = f"the body did not arrive within {settings.body_timeout:g}s"
        raise Rejected(408, "request_timeout", "body_timeout", detail) from None
    except BrokenBody as exc:
        raise Rejected(400, "bad_request", "bad_body", str(exc)) from None


async def _receive(
    request: HookRequest, state: IngressState, live: Live[IngressSettings], entry: SourceEntry
) -> tuple[str, Answer]:
    """The checks that need the request, then the pipeline; (outcome label, response)."""
    settings = live.ingress
    provider = PROVIDERS[entry.provider]
    kind = _kind(entry, provider, request.kind)
    if entry.limiter is not None and (wait := entry.limiter.try_acquire()) > 0:
        raise Rejected(
            429,
            "too_many_requests",
            "rate_limited",
            f"source {entry.name!r} is over its rate limit",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )
    content_type = request.headers.get("Content-Type")
    if not is_json_content_type(content_type):
        detail = f"{content_type!r} is not JSON"
        raise Rejected(415, "unsupported_media_type", "unsupported_media_type", detail)
    body = await _body(request, settings)
    try:
        entry.auth.check_signature(body, request.headers)
    except AuthError as exc:
        raise _unauthorized(settings, "bad_signature", str(exc)) from None
    pipeline = state.pipeline
    inbound = Inbound(
        source=entry.name,
        provider=entry.provider,
        body=body,
        received_at=received_now(),
        kind=kind,
        content_type=content_type,
        request_id=request.request_id,
        delivery_id=_delivery_id(request.headers.get(header))
        if (header := provider.delivery_header)
        else None,
        max_events=live.max_events,
    )
    try:
        outcome = await pipeline.accept(inbound, live)
    except RecordTooLarge as exc:
        raise Rejected(
            413,
            "payload_too_large",
            "payload_too_large",
            str(exc),
            reason="too_large_for_bus",
            level="warning",
        ) from None
    except BusError as exc:
        raise Rejected(
            503,
            "unavailable",
            "unavailable",
            "the event bus is unavailable; retry later",
            headers={"Retry-After": RETRY_AFTER_SECONDS},
            logged=str(exc),
            reason="bus_unavailable",
            level="warning",
        ) from None
    match outcome:
        case Accepted(ids):
            return "accepted", _accepted(AcceptedBody(len(ids), ids))
        case DeadLettered(reason):
            log.info("hook_deadlettered", reason=reason)
            return "deadlettered", _accepted(AcceptedBody(0, [], reason))
        case Malformed(detail):
            raise Rejected(400, "malformed_json", "malformed_json", detail)


def _accepted(body: AcceptedBody) -> Answer:
    return Answer(202, _encoder.encode(body))


def _delivery_id(value: str | None) -> str | None:
    """The provider's delivery id when it is a sane token (a UUID, say); otherwise none."""
    if value is None or not _DELIVERY_ID.match(value):
        return None
    return value


_DELIVERY_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
