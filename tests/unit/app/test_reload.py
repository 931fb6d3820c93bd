"""The reloader on its own: a real file, a pipeline on the memory bus, no server (but for
the request held across a reload, served as ``relay serve`` serves it).

A reload takes the new file whole (every live setting swapped in one assignment) or not at
all (a bad file, a restart-only change or guessable secrets beyond loopback leave every
object as it was). ``integration/test_reload.py`` reloads a running app over HTTP and with
SIGHUP.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from relay.admin import Reloaded, ReloadRefused
from relay.app import RELOADER
from relay.app.reload import RESTART_ONLY
from relay.bus.memory import MemoryBus
from relay.config import load
from relay.ingress.state import IngressSettings, live_for
from relay.live import Current, Live
from tests.factories import Reloadable, chat_event, chatwoot_message, reloader_for
from tests.support import relay_client

TOKEN = "alpha-token-0123456789abcdef"
BASE = f"""\
sources: {{alpha: {{provider: chatwoot, tokens: [{TOKEN}]}}}}
limits: {{max_events_per_body: 10, header_timeout: 5s}}
dedupe: {{window: 1m, max_entries: 50}}
"""
CHANGED = f"""\
sources:
  alpha: {{provider: chatwoot, tokens: [{TOKEN}]}}
  beta: {{provider: plugchat, tokens: [{TOKEN}]}}
routes: [{{name: chats, match: {{type: 'chat.*'}}, topic: chat.only}}]
limits: {{max_events_per_body: 3, header_timeout: 2s, max_body_bytes: 4096}}
dedupe: {{window: 30s, max_entries: 7}}
"""


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "relay.yaml"
    path.write_text(f"data_dir: {tmp_path}\n{BASE}")
    return path


def snapshot(parts: Reloadable) -> tuple[object, ...]:
    """Everything a reload may change, by identity."""
    return (parts.reloader.config, parts.reloader.current.live)


def readers(parts: Reloadable) -> list[Current[Any]]:
    """The holder each reader of the live settings reads through (the deduplicator is
    handed the pipeline's snapshot)."""
    pipeline = parts.pipeline
    return [parts.state.current, pipeline.settings, parts.guard.settings]


def described(live: Live[IngressSettings]) -> dict[str, object]:
    """Every field of ``live`` as a comparable value (routers and sources by what they do)."""
    ingress = live.ingress
    view: dict[str, object] = {
        name: getattr(live, name) for name in Live.__struct_fields__ if name != "router"
    }
    view["router"] = list(live.router.topics_for(chat_event(1, 1)))
    view["ingress"] = (
        [(e.name, e.provider, e.max_in_flight) for e in ingress.sources.values()],
        ingress.max_body_bytes,
        ingress.body_timeout,
        ingress.max_in_flight,
        ingress.debug_errors,
        ingress.metrics_token,
        ingress.admin_token,
    )
    return view


class Silent:
    """A connection that sends nothing (the guard only calls ``force_close``)."""

    closed = False

    def force_close(self) -> None:
        self.closed = True


async def test_a_reload_swaps_every_live_setting(path: Path, tmp_path: Path) -> None:
    parts = reloader_for(path)
    path.write_text(f"data_dir: {tmp_path}\n{CHANGED}")
    result = await parts.reloader.reload()
    assert result == Reloaded(sources=["alpha", "beta"], routes=["chats"], subscribers=[])
    assert sorted(parts.state.current.live.ingress.sources) == ["alpha", "beta"]
    live = parts.pipeline.settings.live
    assert list(live.router.topics_for(chat_event(1, 1))) == ["chat.only"]
    assert live.max_events == 3
    assert parts.guard.settings.live.header_timeout == 2.0
    silent = Silent()
    parts.guard.sweep([silent], now=100.0)
    assert parts.guard.sweep([silent], now=102.5) == 1 and silent.closed  # 2s, not 5s
    assert (live.dedupe_window, live.dedupe_max_entries) == (30.0, 7)
    assert parts.reloader.config.routes[0].name == "chats"  # what the admin side reads next


class Recording(Current[Any]):
    """A holder that keeps every value assigned to it."""

    def __init__(self, live: Live[Any]) -> None:
        self.assigned: list[Live[Any]] = []
        super().__init__(live)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "live":
            self.assigned.append(value)
        super().__setattr__(name, value)


async def test_a_reload_is_one_assignment_of_the_whole_new_settings(
    path: Path, tmp_path: Path
) -> None:
    parts = reloader_for(path, Recording)
    holder = parts.reloader.current
    assert isinstance(holder, Recording)
    assert all(reader is holder for reader in readers(parts))  # one holder, shared
    [old] = holder.assigned  # the start-up settings
    path.write_text(f"data_dir: {tmp_path}\n{CHANGED}")
    await parts.reloader.reload()
    assert holder.assigned[0] is old and len(holder.assigned) == 2  # one assignment
    new = holder.assigned[1]
    assert new is holder.live and new is not old
    assert all(reader is holder for reader in readers(parts))
    expected = described(live_for(load(path)))
    assert described(new) == expected  # every field from the new file, none left behind
    assert all(described(new)[name] != described(old)[name] for name in Live.__struct_fields__)


@pytest.fixture
async def served(path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], MemoryBus]]:
    bus = MemoryBus()
    async with relay_client(load(path), bus=bus, role="ingress", config_path=path) as client:
        yield client, bus


async def test_a_request_held_across_a_reload_is_served_by_the_old_settings_whole(
    served: tuple[TestClient[Any, Any], MemoryBus], path: Path, tmp_path: Path
) -> None:
    client, bus = served
    body = chatwoot_message(1)
    half = asyncio.Event()
    rest = asyncio.Event()

    async def slowly() -> AsyncIterator[bytes]:
        yield body[:10]
        half.set()
        await rest.wait()
        yield body[10:]

    url = f"/v1/hooks/alpha?token={TOKEN}"
    headers = {"Content-Type": "application/json"}
    held = asyncio.create_task(client.post(url, data=slowly(), headers=headers))
    await half.wait()
    await asyncio.sleep(0.05)  # the handler is in, waiting for the body
    path.write_text(f"data_dir: {tmp_path}\n{CHANGED}")
    await client.app[RELOADER].reload()
    rest.set()
    answer = await held
    assert answer.status == 202, await answer.text()
    [event] = bus.records("chat.events")  # the old routes: no route, the events topic
    assert json.loads(event.value)["id"] in (await answer.json())["ids"]
    after = await client.post(url, data=chatwoot_message(2), headers=headers)
    assert after.status == 202
    assert len(bus.records("chat.only")) == 1 and len(bus.records("chat.events")) == 1


async def test_a_file_that_does_not_load_changes_nothing(path: Path) -> None:
    parts = reloader_for(path)
    before = snapshot(parts)
    path.write_text(path.read_text().replace("max_entries: 50", "max_entries: 0"))
    with pytest.raises(ReloadRefused, match=r"dedupe\.max_entries"):
        await parts.reloader.reload()
    assert snapshot(parts) == before


RESTART_CHANGES = {
    "listen": "listen: {port: 8111}\n",
    "data_dir": "data_dir: /elsewhere\n",
    "kafka": "kafka: {bootstrap_servers: '127.0.0.1:9'}\n",
    "topics": "topics: {events: other.events}\n",
    "shutdown_grace": "shutdown_grace: 3s\n",
    "workers": "workers: 2\n",
    "telemetry": "telemetry: {otlp_endpoint: 'http://127.0.0.1:4318'}\n",
    "admin.listen": "admin: {listen: {port: 8112}}\n",
}


def test_every_restart_only_key_is_tried_here() -> None:
    assert set(RESTART_CHANGES) == {*RESTART_ONLY, "admin.listen"}


@pytest.mark.parametrize("key", sorted(RESTART_CHANGES))
async def test_a_restart_only_change_is_refused_and_named(path: Path, key: str) -> None:
    parts = reloader_for(path)
    before = snapshot(parts)
    text = path.read_text()
    if key == "data_dir":
        text = text.split("\n", 1)[1]  # the fixture's own data_dir line gives way
    live = text.replace("max_events_per_body: 10", "max_events_per_body: 2")  # and one live change
    path.write_text(live + RESTART_CHANGES[key])
    with pytest.raises(ReloadRefused) as refused:
        await parts.reloader.reload()
    assert str(refused.value) == f"changing {key} needs a restart; nothing was reloaded"
    assert snapshot(parts) == before


async def test_guessable_secrets_are_refused_only_beyond_loopback(path: Path) -> None:
    parts = reloader_for(path)
    reloader = parts.reloader
    path.write_text(path.read_text().replace(TOKEN, "short"))
    reloader.listen_host = "127.0.0.1"
    await reloader.reload()  # loopback: taken
    path.write_text(path.read_text().replace("max_events_per_body: 10", "max_events_per_body: 4"))
    reloader.listen_host = "0.0.0.0"
    before = snapshot(parts)
    with pytest.raises(ReloadRefused, match=r"sources\.alpha\.tokens\[0\] is shorter than"):
        await parts.reloader.reload()
    assert snapshot(parts) == before


async def test_without_a_file_there_is_nothing_to_reload(path: Path) -> None:
    reloader = reloader_for(path).reloader
    reloader.path = None
    with pytest.raises(ReloadRefused, match="not started from a configuration file"):
        await reloader.reload()
