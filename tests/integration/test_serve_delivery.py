"""The README's path: add a subscriber to the example config, post a seed webhook, and the
signed CloudEvent arrives, with ``relay serve`` as a real process on its embedded default."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import aiohttp
import pytest
import standardwebhooks

from tests.subscriber import Subscriber
from tests.support import FIXTURES, free_port, wait_ready

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "config" / "relay.example.yaml"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def with_subscriber_enabled(text: str) -> str:
    lines = text.splitlines()
    start = lines.index("#subscribers:")
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("#"))
    lines[start:end] = [line[1:] for line in lines[start:end]]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("role_split", [False, True], ids=["role-all", "ingress+delivery"])
async def test_seed_webhook_reaches_the_subscriber_signed(tmp_path: Path, role_split: bool) -> None:
    subscriber = await Subscriber().start()
    config = tmp_path / "relay.yaml"
    config.write_text(with_subscriber_enabled(EXAMPLE.read_text()))
    env = {**os.environ, "RELAY_DATA_DIR": str(tmp_path / "var"), "CRM_URL": subscriber.url}
    port = free_port()
    roles = [("ingress", port), ("delivery", free_port())] if role_split else [("all", port)]
    processes = []
    for role, role_port in roles:
        with (tmp_path / f"{role}.log").open("wb") as log:  # the child keeps its own copy
            processes.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "relay",
                    "serve",
                    "--config",
                    str(config),
                    "--role",
                    role,
                    "--port",
                    str(role_port),
                    env=env,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=log,
                )
            )
    try:
        for process, (role, role_port) in zip(processes, roles, strict=True):
            try:
                await wait_ready(role_port, process)
            except AssertionError as exc:  # say why: the process's own last lines
                lines = (tmp_path / f"{role}.log").read_text(errors="replace").splitlines()
                raise AssertionError(f"{role}: {exc}: {lines[-5:]}") from None
        body = (FIXTURES / "chatwoot" / "nexloo_seed_message_created.json").read_bytes()
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"http://127.0.0.1:{port}/v1/hooks/nexloo?token=dev-nexloo-token",
                data=body,
                headers={"Content-Type": "application/json"},
            ) as response,
        ):
            assert response.status == 202
            [event_id] = (await response.json())["ids"]
        await subscriber.wait_for(lambda s: len(s.delivered()) == 1, within=20)
    finally:
        for process in processes:
            if process.returncode is None:
                process.terminate()
        for process in processes:
            assert await process.wait() == 0  # SIGTERM: graceful exit
        await subscriber.close()
    [got] = subscriber.delivered()
    event = standardwebhooks.Webhook(SECRET).verify(got.body, got.headers)
    assert event["id"] == event_id
    assert event["type"] == "chat.message.created"
    assert json.loads(got.body)["data"]["message"]["direction"] == "incoming"
