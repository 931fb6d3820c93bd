"""The admin endpoints' own work: the token guard, query and body parsing, and turning the
operations' errors into JSON answers. A real app of just the admin routes on a loopback
port, with real operations of an ingress-only process (no index, no delivery) and a real
reloader; ``integration/test_admin_api.py`` covers the endpoints with delivery and an index.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from relay.admin import CONFIG, OPS, RELOAD, ROUTES, Operations
from relay.admin.api import filters_from, time_param
from relay.admin.ops import BadRequest
from relay.ingress.state import INGRESS
from tests.factories import ADMIN_TOKEN, reloader_for

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FILE = f"""\
admin: {{token: {ADMIN_TOKEN}}}
sources: {{nexloo: {{provider: chatwoot, tokens: [t0k3n-0123456789abcdef]}}}}
subscribers: [{{name: crm, url: 'http://127.0.0.1:9/hook'}}]
"""


@pytest.fixture
def away_from_utc() -> Iterator[None]:
    """The process's local time zone is not UTC (a time without an offset is UTC even so)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "America/Sao_Paulo")
        time.tzset()
        yield
    time.tzset()


@pytest.mark.usefixtures("away_from_utc")
def test_a_time_is_a_duration_ago_or_an_rfc_3339_time() -> None:
    before = int(time.time() * 1000)
    two_hours_ago = time_param("2h", "since")
    assert two_hours_ago is not None
    assert before - 7_200_000 - 1000 <= two_hours_ago <= int(time.time() * 1000) - 7_200_000
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert time_param("2026-01-02T03:04:05Z", "since") == moment.timestamp() * 1000
    assert time_param("2026-01-02T03:04:05", "until") == moment.timestamp() * 1000  # UTC
    assert time_param("2026-01-02T05:04:05+02:00", "since") == moment.timestamp() * 1000
    assert time_param("", "since") is None and time_param(None, "since") is None
    with pytest.raises(BadRequest, match=r"^until: expected an RFC 3339 time or a duration"):
        time_param("yesterday", "until")


def test_filters_read_from_the_query_leave_out_what_is_empty() -> None:
    filters, limit, cursor = filters_from({"type": "chat.*", "source": "", "limit": "20"})
    assert (filters.type, filters.source, filters.since_ms, limit, cursor) == (
        "chat.*",
        None,
        None,
        20,
        None,
    )
    assert filters_from({})[1] == 50
    with pytest.raises(BadRequest, match="limit: expected a number"):
        filters_from({"limit": "many"})


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], Path]]:
    path = tmp_path / "relay.yaml"
    path.write_text(f"data_dir: {tmp_path / 'var'}\n{FILE}")
    parts = reloader_for(path)
    reloader = parts.reloader
    app = web.Application()
    app[INGRESS], app[RELOAD], app[CONFIG] = (
        parts.state,
        reloader.reload,
        lambda: reloader.config,
    )
    app[OPS] = Operations(lambda: reloader.config, None, None)  # as in --role ingress
    app.add_routes(ROUTES)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client, path
    finally:
        await client.close()


async def error(response: Any) -> tuple[int, str, str]:
    body = await response.json()
    return response.status, body["error"], body["detail"]


async def test_a_missing_or_wrong_token_is_401(client: tuple[TestClient[Any, Any], Path]) -> None:
    http, _ = client
    for headers in ({}, {"Authorization": "Bearer not-the-token"}):
        for method, url in (("GET", "/admin/api/subscribers"), ("POST", "/admin/reload")):
            answer = await error(await http.request(method, url, headers=headers))
            assert answer == (401, "unauthorized", "missing or invalid admin token")


async def test_without_an_admin_token_the_endpoints_are_off(
    client: tuple[TestClient[Any, Any], Path],
) -> None:
    http, path = client
    path.write_text(path.read_text().replace(f"admin: {{token: {ADMIN_TOKEN}}}\n", ""))
    assert (await http.post("/admin/reload", headers=AUTH)).status == 200  # the last use
    answer = await error(await http.get("/admin/api/subscribers", headers=AUTH))
    assert answer == (404, "not_found", "admin endpoints are off (no admin.token)")


async def test_the_operations_errors_become_json_answers(
    client: tuple[TestClient[Any, Any], Path],
) -> None:
    http, _ = client
    answer = await error(await http.get("/admin/api/events", headers=AUTH))
    assert answer[:2] == (404, "not_here")  # no index in an ingress-only process
    answer = await error(await http.post("/admin/api/subscribers/nobody/disable", headers=AUTH))
    assert answer == (404, "not_found", "no subscriber named 'nobody'")
    answer = await error(await http.get("/admin/api/events?limit=many", headers=AUTH))
    assert answer == (400, "bad_request", "limit: expected a number")


@pytest.mark.parametrize(
    ("body", "told"),
    [
        (b"{}", 'give either "ids": [...] or "since": "<RFC 3339>"'),
        (b'{"ids": ["a"], "since": "1h"}', 'give either "ids": [...] or "since": "<RFC 3339>"'),
        (b'{"ids": "a"}', "body: Expected `array | null`, got `str` - at `$.ids`"),
        (b'{"id": ["a"]}', "body: Object contains unknown field `id`"),
        (b"not json", "body: JSON is malformed: invalid character (byte 4)"),
    ],
)
async def test_a_redrive_body_is_checked_before_anything_is_done(
    client: tuple[TestClient[Any, Any], Path], body: bytes, told: str
) -> None:
    http, _ = client
    response = await http.post("/admin/api/subscribers/crm/redrive", data=body, headers=AUTH)
    assert await error(response) == (400, "bad_request", told)


async def test_a_reload_answers_what_it_took_or_409_with_why(
    client: tuple[TestClient[Any, Any], Path],
) -> None:
    http, path = client
    response = await http.post("/admin/reload", headers=AUTH)
    assert response.status == 200
    assert await response.json() == {
        "reloaded": True,
        "sources": ["nexloo"],
        "routes": [],
        "subscribers": ["crm"],
    }
    path.write_text(path.read_text() + "listen: {port: 8111}\n")
    answer = await error(await http.post("/admin/reload", headers=AUTH))
    assert answer == (
        409,
        "reload_refused",
        "changing listen needs a restart; nothing was reloaded",
    )
