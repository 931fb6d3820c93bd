"""Hot reload: POST /admin/reload and SIGHUP swap sources, routes and subscribers live."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from relay.app import build_app
from relay.bus.embedded import LOG_FILE, read
from relay.config import load
from tests.subscriber import Subscriber
from tests.support import free_port, poll_until, wait_ready

ADMIN = {"Authorization": "Bearer admin-secret"}
JSON = {"Content-Type": "application/json"}
BASE = """
data_dir: {data_dir}
admin: {{token: admin-secret}}
sources:
  alpha: {{provider: chatwoot, tokens: [a-token]}}
{extra}
"""


def stored_position(log: Path, consumer: str) -> int | None:
    """The start position a subscriber stored in the embedded log, if it did yet."""
    try:
        conn = sqlite3.connect(f"file:{log}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        row = conn.execute(
            'SELECT "offset" FROM consumer_offsets WHERE consumer = ?', (consumer,)
        ).fetchone()
    except sqlite3.Error:  # no subscriber has stored a position yet
        return None
    finally:
        conn.close()
    return None if row is None else int(row[0])


def message(n: int) -> bytes:
    return json.dumps(
        {"event": "message_created", "id": n, "message_type": 0, "conversation": {"id": n}}
    ).encode()


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "relay.yaml"
    path.write_text(BASE.format(data_dir=tmp_path, extra=""))
    return path


@pytest.fixture
async def client(config_file: Path) -> AsyncIterator[TestClient[Any, Any]]:
    app = build_app(load(config_file), config_path=config_file)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    yield client
    await client.close()


async def test_reload_under_load_adds_a_source_and_a_route(
    client: TestClient[Any, Any], config_file: Path, tmp_path: Path
) -> None:
    statuses: list[int] = []
    stop = asyncio.Event()

    async def load_alpha() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            response = await client.post(
                "/v1/hooks/alpha?token=a-token", data=message(n), headers=JSON
            )
            statuses.append(response.status)

    loaders = [asyncio.create_task(load_alpha()) for _ in range(4)]
    await poll_until(lambda: len(statuses) >= 20, what="load before the reload")
    config_file.write_text(
        BASE.format(
            data_dir=tmp_path,
            extra="  beta: {provider: plugchat, tokens: [b-token]}\n"
            "routes: [{name: msgs, match: {type: 'chat.message.*'}, topic: chat.messages}]",
        )
    )
    response = await client.post("/admin/reload", headers=ADMIN)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body == {
        "reloaded": True,
        "sources": ["alpha", "beta"],
        "routes": ["msgs"],
        "subscribers": [],
    }
    during = len(statuses)
    await poll_until(lambda: len(statuses) >= during + 20, what="load after the reload")
    stop.set()
    await asyncio.gather(*loaders)
    assert statuses and set(statuses) == {202}  # not one request dropped or refused

    beta = await client.post(
        "/v1/hooks/beta/when-disconnecting?token=b-token",
        data=b'{"type": "DisconnectedCallback", "instanceId": "i"}',
        headers=JSON,
    )
    assert beta.status == 202
    routed = read(tmp_path / LOG_FILE, topic="chat.messages")
    assert routed, "messages after the reload follow the new route"


async def test_invalid_config_is_refused_and_the_old_one_stays(
    client: TestClient[Any, Any], config_file: Path, tmp_path: Path
) -> None:
    config_file.write_text(BASE.format(data_dir=tmp_path, extra="routes: [{name: x}]"))
    response = await client.post("/admin/reload", headers=ADMIN)
    assert response.status == 409
    body = await response.json()
    assert body["error"] == "reload_refused"
    assert "routes[0].topic: required field is missing" in body["detail"]
    ok = await client.post("/v1/hooks/alpha?token=a-token", data=message(1), headers=JSON)
    assert ok.status == 202


async def test_restart_only_settings_are_refused(
    client: TestClient[Any, Any], config_file: Path, tmp_path: Path
) -> None:
    config_file.write_text(BASE.format(data_dir=tmp_path, extra="listen: {port: 9999}"))
    response = await client.post("/admin/reload", headers=ADMIN)
    assert response.status == 409
    assert "listen needs a restart" in (await response.json())["detail"]
    moved = BASE.format(data_dir=tmp_path, extra="").replace(
        "admin: {token: admin-secret}", "admin: {token: admin-secret, listen: {port: 9998}}"
    )
    config_file.write_text(moved)
    response = await client.post("/admin/reload", headers=ADMIN)
    assert response.status == 409
    assert "admin.listen needs a restart" in (await response.json())["detail"]


async def test_admin_needs_its_token(client: TestClient[Any, Any], tmp_path: Path) -> None:
    assert (await client.post("/admin/reload")).status == 401
    wrong = await client.post("/admin/reload", headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401
    # the source tokens are no admin tokens
    other = await client.post("/admin/reload", headers={"Authorization": "Bearer a-token"})
    assert other.status == 401


async def test_admin_is_off_without_a_token(tmp_path: Path) -> None:
    path = tmp_path / "relay.yaml"
    path.write_text(f"data_dir: {tmp_path}\n")
    client: TestClient[Any, Any] = TestClient(TestServer(build_app(load(path), config_path=path)))
    await client.start_server()
    try:
        assert (await client.post("/admin/reload", headers=ADMIN)).status == 404
    finally:
        await client.close()


async def test_reload_starts_a_new_subscriber(
    client: TestClient[Any, Any], config_file: Path, tmp_path: Path
) -> None:
    subscriber = await Subscriber().start()
    try:
        config_file.write_text(
            BASE.format(
                data_dir=tmp_path,
                extra=f"subscribers: [{{name: late, url: '{subscriber.url}'}}]",
            )
        )
        assert (await client.post("/admin/reload", headers=ADMIN)).status == 200
        # start_from latest: only what is posted after the new worker stored its start
        await poll_until(
            lambda: stored_position(tmp_path / LOG_FILE, "relay.sub.late") is not None,
            what="the new subscriber's start position",
        )
        posted = await client.post("/v1/hooks/alpha?token=a-token", data=message(7), headers=JSON)
        [event_id] = (await posted.json())["ids"]
        await subscriber.wait_for(lambda s: len(s.delivered()) == 1)
        assert subscriber.delivered()[0].headers["webhook-id"] == event_id
    finally:
        await subscriber.close()


async def test_sighup_reloads_a_running_process(tmp_path: Path) -> None:
    config = tmp_path / "relay.yaml"
    config.write_text(BASE.format(data_dir=tmp_path / "var", extra=""))
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "relay",
        "serve",
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        env=os.environ.copy(),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(port, process)
        async with aiohttp.ClientSession() as session:
            gamma = f"{url}/v1/hooks/gamma?token=g-token"
            async with session.post(gamma, data=message(1), headers=JSON) as response:
                assert response.status == 401  # no such source (yet)
            config.write_text(
                BASE.format(
                    data_dir=tmp_path / "var",
                    extra="  gamma: {provider: chatwoot, tokens: [g-token]}",
                )
            )
            process.send_signal(signal.SIGHUP)
            for _ in range(100):
                async with session.post(gamma, data=message(1), headers=JSON) as response:
                    if response.status == 202:
                        break
                await asyncio.sleep(0.05)
            assert response.status == 202
    finally:
        process.terminate()
        assert await process.wait() == 0
