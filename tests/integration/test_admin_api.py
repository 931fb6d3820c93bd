"""The admin API against the real app on the embedded log, a real subscriber, real files:
the attempt log, the index, redrive and replay."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from relay.app import build_app
from relay.config import parse
from tests.factories import ADMIN_TOKEN, admin_config
from tests.subscriber import Subscriber
from tests.support import eventually, post_hook

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(params=["embedded", "kafka"])
async def relay_client(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[TestClient[Any, Any], Subscriber]]:
    kafka = request.getfixturevalue("broker") if request.param == "kafka" else None
    subscriber = await Subscriber(script=lambda s, body, headers: 500).start()
    config = parse(admin_config(tmp_path, subscriber.url, kafka=kafka))
    client = TestClient(TestServer(build_app(config)))
    await client.start_server()
    try:
        yield client, subscriber
    finally:
        await client.close()
        await subscriber.close()


async def test_attempts_are_logged_and_a_dead_letter_is_redriven(
    relay_client: tuple[TestClient[Any, Any], Subscriber],
) -> None:
    client, subscriber = relay_client
    event_id = await post_hook(client, "message_created.json")

    async def dead_lettered() -> Any:
        response = await client.get(f"/admin/api/events/{event_id}", headers=AUTH)
        if response.status != 200:
            return None
        detail = await response.json()
        return detail if detail["deadletters"] and len(detail["attempts"]) == 2 else None

    detail = await eventually(dead_lettered)
    assert detail["event"]["id"] == event_id
    # the embedded log writes a body's records together; on Kafka the nearest body is named
    assert detail["raw"]["matched_by"] in ("adjacent", "nearest")
    assert '"message_created"' in detail["raw"]["body"]
    first, second = detail["attempts"]
    assert (first["attempt"], first["outcome"], first["status"]) == (1, "retrying", 500)
    assert (second["attempt"], second["outcome"]) == (2, "deadlettered")
    assert second["excerpt"] == "nope"

    # found by conversation, by phone, and not by another conversation
    page = await (await client.get("/admin/api/events?key=nexloo:4711", headers=AUTH)).json()
    assert [e["id"] for e in page["events"]] == [event_id]
    phone = detail["indexed"]["phone"]
    assert phone
    page = await (await client.get(f"/admin/api/events?phone={phone}", headers=AUTH)).json()
    assert [e["id"] for e in page["events"]] == [event_id]
    page = await (await client.get("/admin/api/events?key=nexloo:1", headers=AUTH)).json()
    assert page["events"] == []

    subscribers = (await (await client.get("/admin/api/subscribers", headers=AUTH)).json())[
        "subscribers"
    ]
    [crm] = subscribers
    assert "pw" not in crm["url"] and "s3cr3t" not in crm["url"]
    assert "whsec" not in str(subscribers)
    assert crm["failed"] == 2 and crm["delivered"] == 0

    subscriber.script = lambda s, body, headers: 200  # the subscriber's team fixed it
    response = await client.post(
        "/admin/api/subscribers/crm/redrive", json={"ids": [event_id]}, headers=AUTH
    )
    assert response.status == 202
    assert (await response.json())["redriving"] == 1
    await subscriber.wait_for(lambda s: len(s.delivered()) == 1)

    async def delivered() -> Any:
        detail = await (await client.get(f"/admin/api/events/{event_id}", headers=AUTH)).json()
        last = detail["attempts"][-1]
        return last if last["outcome"] == "delivered" else None

    last = await eventually(delivered)
    assert last["replay"] is True
    listed = await (await client.get("/admin/api/deadletters", headers=AUTH)).json()
    assert [d["redelivered"] for d in listed["deadletters"]] == [True]
    # redriving again sends nothing: it was delivered since
    response = await client.post(
        "/admin/api/subscribers/crm/redrive", json={"since": "1h"}, headers=AUTH
    )
    assert (await response.json())["redriving"] == 0

    response = await client.post(
        f"/admin/api/events/{event_id}/replay", json={"subscriber": "crm"}, headers=AUTH
    )
    assert response.status == 202
    await subscriber.wait_for(lambda s: len(s.delivered()) == 2)


@pytest.mark.parametrize("relay_client", ["embedded"], indirect=True)
async def test_search_pages_with_a_cursor(
    relay_client: tuple[TestClient[Any, Any], Subscriber],
) -> None:
    client, _ = relay_client
    ids = set()
    for fixture in ("message_created.json", "conversation_created.json", "contact_created.json"):
        ids.add(await post_hook(client, fixture))

    async def indexed() -> Any:
        page = await (await client.get("/admin/api/events?limit=100", headers=AUTH)).json()
        return len(page["events"]) == 3

    await eventually(indexed)
    seen: list[str] = []
    cursor = ""
    while True:
        response = await client.get(f"/admin/api/events?limit=2&cursor={cursor}", headers=AUTH)
        page = await response.json()
        seen += [e["id"] for e in page["events"]]
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    assert len(seen) == 3 and set(seen) == ids
    response = await client.get("/admin/api/events?cursor=nonsense", headers=AUTH)
    assert response.status == 400
    response = await client.get("/admin/api/events?since=yesterday", headers=AUTH)
    assert response.status == 400


@pytest.mark.parametrize("relay_client", ["embedded"], indirect=True)
async def test_tokens(relay_client: tuple[TestClient[Any, Any], Subscriber]) -> None:
    client, _ = relay_client
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        for method, path in (
            ("GET", "/admin/api/events"),
            ("GET", "/admin/api/subscribers"),
            ("POST", "/admin/api/subscribers/crm/redrive"),
            ("POST", "/admin/api/events/x/replay"),
        ):
            response = await client.request(method, path, headers=headers)
            assert response.status == 401, (method, path, headers)
    response = await client.post(
        "/admin/api/subscribers/nobody/redrive", json={"since": "1h"}, headers=AUTH
    )
    assert response.status == 404
    response = await client.post(
        "/admin/api/subscribers/crm/redrive", json={"bogus": 1}, headers=AUTH
    )
    assert response.status == 400


async def test_off_without_a_token(tmp_path: Path) -> None:
    config = parse(admin_config(tmp_path, "http://127.0.0.1:9/hook", token=False))
    async with TestClient(TestServer(build_app(config))) as client:
        for path in ("/admin/api/events", "/admin/api/subscribers"):
            response = await client.get(path, headers=AUTH)
            assert response.status == 404
