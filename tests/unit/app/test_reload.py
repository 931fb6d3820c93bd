"""The reloader on its own: a real file, a pipeline on the memory bus, no server.

A reload takes the new file whole (every live setting swapped) or not at all (a bad file,
a restart-only change or guessable secrets beyond loopback leave every object as it was).
``integration/test_reload.py`` reloads a running app over HTTP and with SIGHUP.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.admin import Reloaded, ReloadRefused
from relay.app.reload import RESTART_ONLY, Reloader
from tests.factories import chat_event, reloader_for

TOKEN = "alpha-token-0123456789abcdef"
BASE = f"""\
sources: {{alpha: {{provider: chatwoot, tokens: [{TOKEN}]}}}}
limits: {{max_events_per_body: 10, header_timeout: 5s}}
dedupe: {{window: 1m, max_entries: 50}}
"""


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "relay.yaml"
    path.write_text(f"data_dir: {tmp_path}\n{BASE}")
    return path


def snapshot(reloader: Reloader) -> tuple[object, ...]:
    """Everything a reload may change, by identity or value."""
    pipeline, dedupe = reloader.pipeline, reloader.pipeline.dedupe
    assert reloader.guard is not None
    return (
        reloader.config,
        reloader.state.settings,
        pipeline.router,
        pipeline.max_events,
        reloader.guard.header_timeout,
        dedupe.window,
        dedupe.max_entries,
    )


async def test_a_reload_swaps_every_live_setting(path: Path, tmp_path: Path) -> None:
    reloader = reloader_for(path)
    path.write_text(
        f"""\
data_dir: {tmp_path}
sources:
  alpha: {{provider: chatwoot, tokens: [{TOKEN}]}}
  beta: {{provider: plugchat, tokens: [{TOKEN}]}}
routes: [{{name: chats, match: {{type: 'chat.*'}}, topic: chat.only}}]
limits: {{max_events_per_body: 3, header_timeout: 2s}}
dedupe: {{window: 30s, max_entries: 7}}
"""
    )
    result = await reloader.reload()
    assert result == Reloaded(sources=["alpha", "beta"], routes=["chats"], subscribers=[])
    assert sorted(reloader.state.settings.sources) == ["alpha", "beta"]
    assert list(reloader.pipeline.router.topics_for(chat_event(1, 1))) == ["chat.only"]
    assert reloader.pipeline.max_events == 3
    assert reloader.guard is not None and reloader.guard.header_timeout == 2.0
    assert (reloader.pipeline.dedupe.window, reloader.pipeline.dedupe.max_entries) == (30.0, 7)
    assert reloader.config.routes[0].name == "chats"  # what the admin side reads next


async def test_a_file_that_does_not_load_changes_nothing(path: Path) -> None:
    reloader = reloader_for(path)
    before = snapshot(reloader)
    path.write_text(path.read_text().replace("max_entries: 50", "max_entries: 0"))
    with pytest.raises(ReloadRefused, match=r"dedupe\.max_entries"):
        await reloader.reload()
    assert snapshot(reloader) == before


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
    reloader = reloader_for(path)
    before = snapshot(reloader)
    text = path.read_text()
    if key == "data_dir":
        text = text.split("\n", 1)[1]  # the fixture's own data_dir line gives way
    live = text.replace("max_events_per_body: 10", "max_events_per_body: 2")  # and one live change
    path.write_text(live + RESTART_CHANGES[key])
    with pytest.raises(ReloadRefused) as refused:
        await reloader.reload()
    assert str(refused.value) == f"changing {key} needs a restart; nothing was reloaded"
    assert snapshot(reloader) == before


async def test_guessable_secrets_are_refused_only_beyond_loopback(path: Path) -> None:
    reloader = reloader_for(path)
    path.write_text(path.read_text().replace(TOKEN, "short"))
    reloader.listen_host = "127.0.0.1"
    await reloader.reload()  # loopback: taken
    path.write_text(path.read_text().replace("max_events_per_body: 10", "max_events_per_body: 4"))
    reloader.listen_host = "0.0.0.0"
    before = snapshot(reloader)
    with pytest.raises(ReloadRefused, match=r"sources\.alpha\.tokens\[0\] is shorter than"):
        await reloader.reload()
    assert snapshot(reloader) == before


async def test_without_a_file_there_is_nothing_to_reload(path: Path) -> None:
    reloader = reloader_for(path)
    reloader.path = None
    with pytest.raises(ReloadRefused, match="not started from a configuration file"):
        await reloader.reload()
