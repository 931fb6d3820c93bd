"""Bounded normalization end to end (real app, real embedded log): too many events from one
body, lone surrogates, canonical events too large for the bus. The raw copy always stays."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from relay.bus.embedded import LOG_FILE, read
from relay.cloudevents import decode
from tests.support import fixture_bytes, make_config, relay_client

JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    config = make_config(
        f"""
data_dir: {tmp_path}
sources:
  cw: {{provider: chatwoot}}
  plug: {{provider: plugchat}}
limits: {{max_events_per_body: 5}}
"""
    )
    async with relay_client(config) as client:
        yield client


def records(tmp_path: Path, topic: str) -> list[Any]:
    return read(tmp_path / LOG_FILE, topic=topic)


def status_body(count: int) -> bytes:
    ids = [f"3EB0{n:06d}" for n in range(count)]
    return json.dumps({"type": "MessageStatusCallback", "status": "READ", "ids": ids}).encode()


async def test_too_many_events_is_a_dead_letter_not_an_expansion(
    client: TestClient[Any, Any], tmp_path: Path
) -> None:
    body = status_body(6)
    response = await client.post("/v1/hooks/plug/messageStatus", data=body, headers=JSON)
    assert response.status == 202
    answer = await response.json()
    assert answer == {"accepted": 0, "ids": [], "deadlettered": "too_many_events"}
    [raw] = records(tmp_path, "relay.raw")
    assert raw.value == body
    [dead] = records(tmp_path, "relay.deadletter")
    assert dead.value == body and dict(dead.headers)["relay-reason"] == b"too_many_events"
    assert records(tmp_path, "chat.events") == []


async def test_up_to_the_limit_every_event_is_made(
    client: TestClient[Any, Any], tmp_path: Path
) -> None:
    response = await client.post("/v1/hooks/plug/messageStatus", data=status_body(5), headers=JSON)
    assert response.status == 202 and (await response.json())["accepted"] == 5
    assert len(records(tmp_path, "chat.events")) == 5


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/v1/hooks/cw",
            b'{"event":"message_created","id":7,"message_type":"incoming",'
            b'"content":"obrigada \\ud83d","conversation":{"id":9}}',
        ),
        (
            "/v1/hooks/plug/finishAttendance",
            fixture_bytes("plugchat/finishAttendance/seed_category.json").replace(
                "Observação do cliente".encode(), b"Observa\\u00e7\\u00e3o \\ud83d", 1
            ),
        ),
    ],
)
async def test_a_lone_surrogate_is_accepted_and_kept(
    client: TestClient[Any, Any], tmp_path: Path, path: str, body: bytes
) -> None:
    assert b"\\ud83d" in body
    response = await client.post(path, data=body, headers=JSON)
    assert response.status == 202, await response.text()
    assert (await response.json())["accepted"] == 1
    [raw] = records(tmp_path, "relay.raw")
    assert raw.value == body
    [record] = records(tmp_path, "chat.events")
    event = decode(record.value)
    text = (
        event.data.message.text
        if event.data.message
        else event.data.conversation.attendance.rating_note  # type: ignore[union-attr]
    )
    assert text is not None and text.endswith("\ufffd")


async def test_max_events_per_body_changes_on_reload(tmp_path: Path) -> None:
    from aiohttp.test_utils import TestServer

    from relay.app import build_app
    from relay.config import load

    path = tmp_path / "relay.yaml"
    text = """
data_dir: {data_dir}
admin: {{token: admin-secret}}
sources: {{plug: {{provider: plugchat}}}}
limits: {{max_events_per_body: {limit}}}
"""
    path.write_text(text.format(data_dir=tmp_path, limit=2))
    client: TestClient[Any, Any] = TestClient(TestServer(build_app(load(path), config_path=path)))
    await client.start_server()
    try:
        url = "/v1/hooks/plug/messageStatus"
        refused = await client.post(url, data=status_body(3), headers=JSON)
        assert (await refused.json())["deadlettered"] == "too_many_events"
        path.write_text(text.format(data_dir=tmp_path, limit=3))
        reloaded = await client.post(
            "/admin/reload", headers={"Authorization": "Bearer admin-secret"}
        )
        assert reloaded.status == 200, await reloaded.text()
        accepted = await client.post(url, data=status_body(3), headers=JSON)
        assert (await accepted.json())["accepted"] == 3
    finally:
        await client.close()
