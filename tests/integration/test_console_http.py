"""The console's doors without a browser: off without a token, login, cookie, CSRF, secrets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from relay.app import build_app
from relay.config import parse
from tests.factories import ADMIN_TOKEN, admin_config
from tests.subscriber import Subscriber
from tests.support import eventually, post_hook

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


async def log_in(
    client: TestClient[Any, Any], token: str = ADMIN_TOKEN, next_: str = "/console/"
) -> Any:
    page = await (await client.get("/console/login")).text()
    match = re.search(r'name="nonce" value="([^"]+)"', page)
    assert match is not None
    return await client.post(
        "/console/login",
        data={"nonce": match.group(1), "token": token, "next": next_},
        allow_redirects=False,
    )


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)


async def test_off_without_an_admin_token(tmp_path: Path) -> None:
    config = parse(admin_config(tmp_path, "http://127.0.0.1:9/hook", token=False))
    async with TestClient(TestServer(build_app(config))) as client:
        for path in ("/console/", "/console/login", "/console/events", "/console"):
            response = await client.get(path, allow_redirects=False)
            assert response.status == 404, path


async def test_login_cookie_csrf_and_no_secrets(tmp_path: Path) -> None:
    subscriber = await Subscriber(script=lambda s, body, headers: 500).start()
    config = parse(admin_config(tmp_path, subscriber.url))
    async with TestClient(TestServer(build_app(config))) as client:
        response = await client.get("/console/events", allow_redirects=False)
        assert response.status == 303
        assert response.headers["Location"].startswith("/console/login?next=")
        # a login form posted from elsewhere (no nonce cookie pair) is refused
        response = await client.post(
            "/console/login", data={"nonce": "x", "token": ADMIN_TOKEN}, allow_redirects=False
        )
        assert response.status == 403
        response = await log_in(client, token="wrong")
        assert response.headers["Location"] == "/console/login?failed=1"
        response = await log_in(client, next_="//evil.example/")
        assert response.status == 303 and response.headers["Location"] == "/console/"
        cookie = next(
            c for c in response.headers.getall("Set-Cookie") if c.startswith("relay_console=")
        )
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console/" in cookie

        event_id = await post_hook(client, "message_created.json")

        async def deadlettered() -> bool:
            page = await (await client.get("/console/deadletters")).text()
            return "pending" in page

        await eventually(deadlettered)
        pages = {}
        for path in (
            "/console/",
            "/console/events",
            f"/console/events/{event_id}",
            "/console/deadletters?subscriber=crm",
        ):
            response = await client.get(path)
            assert response.status == 200, path
            assert "default-src 'none'" in response.headers["Content-Security-Policy"]
            pages[path] = await response.text()
        for page in pages.values():
            assert ADMIN_TOKEN not in page and SECRET not in page
            assert "user:pw" not in page and "s3cr3t" not in page
        csrf = csrf_of(pages["/console/"])

        for data in ({}, {"csrf": "forged"}):
            response = await client.post(
                "/console/deadletters/redrive",
                data={"scope": "selected", "pick": f"crm|{event_id}", **data},
                allow_redirects=False,
            )
            assert response.status == 403
        assert len(subscriber.received) == 2  # nothing redriven by the refused posts

        subscriber.script = lambda s, body, headers: 200
        response = await client.post(
            "/console/deadletters/redrive",
            data={"scope": "all", "subscriber": "crm", "csrf": csrf},
            allow_redirects=False,
        )
        assert response.status == 303 and "redriving+1+dead+letter" in response.headers["Location"]
        await subscriber.wait_for(lambda s: len(s.delivered()) == 1)

        response = await client.post(
            "/console/subscribers/crm/disable", data={"csrf": csrf}, allow_redirects=False
        )
        assert response.status == 303
        api = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        [crm] = (await (await client.get("/admin/api/subscribers", headers=api)).json())[
            "subscribers"
        ]
        assert crm["disabled"] is True
        response = await client.post(
            "/console/subscribers/crm/enable", data={"csrf": csrf}, allow_redirects=False
        )
        [crm] = (await (await client.get("/admin/api/subscribers", headers=api)).json())[
            "subscribers"
        ]
        assert crm["disabled"] is False

        response = await client.post("/console/logout", data={"csrf": csrf}, allow_redirects=False)
        assert response.status == 303
        response = await client.get("/console/", allow_redirects=False)
        assert response.status == 303  # the session is gone
    await subscriber.close()
