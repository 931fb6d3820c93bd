"""Probes and metrics: ``/healthz``, ``/readyz``, ``/metrics`` (served by every role)."""

from __future__ import annotations

from aiohttp import web

from relay.ingress.auth import presented_token, token_matches
from relay.ingress.responses import error_response
from relay.ingress.state import INGRESS, IngressState
from relay.metrics import exposition


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition of relay's metrics (Authorization: Bearer <metrics.token>
    when one is set)."""
    token = request.app[INGRESS].current.live.ingress.metrics_token
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
    """The process is alive: 200 {"status": "ok"}."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """The bus is up and relay accepts webhooks: 200 {"status": "ready"}, otherwise 503
    {"status": "not_ready"}; "mode" says direct or spooling."""
    state: IngressState = request.app[INGRESS]
    bus = state.pipeline.bus
    ready = state.accepting and bus.ready()
    body = {"status": "ready" if ready else "not_ready", "bus": bus.name}
    if bus.mode is not None:
        body["mode"] = bus.mode
    if not state.accepting:
        body["reason"] = "shutting down"
    return web.json_response(body, status=200 if ready else 503)
