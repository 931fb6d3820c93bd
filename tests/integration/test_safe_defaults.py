"""Safe defaults with a real ``relay serve``: guessable secrets are refused beyond loopback
(at start and on reload), and what relay writes under data_dir is the owner's only."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from pathlib import Path

import aiohttp

from relay.admin import ReloadRefused
from relay.app import RELOADER, build_app
from relay.bus import Record
from relay.bus.embedded import EmbeddedLog
from relay.config import load
from tests.support import FIXTURES, free_port, wait_ready

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "config" / "relay.example.yaml"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_example_config_is_refused_beyond_loopback(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    done = subprocess.run(
        [sys.executable, "-m", "relay", "serve", "--config", str(EXAMPLE), "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "RELAY_DATA_DIR": str(data_dir), "RELAY_PORT": str(free_port())},
    )
    assert done.returncode == 1
    [line] = done.stderr.splitlines()  # one line, before anything listens or is written
    assert line.startswith("relay: refusing to listen on 0.0.0.0 (beyond loopback)")
    assert "sources.nexloo.tokens[0] is a value from relay's shipped examples" in line
    assert "allow_insecure_defaults: true" in line
    assert "dev-nexloo-token" not in line
    assert not data_dir.exists()


async def test_data_dir_is_0700_and_every_file_0600(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    data_dir.mkdir(mode=0o755)  # made by someone else's umask: relay tightens it
    data_dir.chmod(0o755)
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "relay", "serve", "--config", str(EXAMPLE)),
        *("--host", "127.0.0.1", "--port", str(port)),
        env={**os.environ, "RELAY_DATA_DIR": str(data_dir)},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await wait_ready(port, process)
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
        files = [p for p in data_dir.rglob("*")]
        assert any(p.name == "log.sqlite3-wal" for p in files)
        assert _mode(data_dir) == 0o700
        assert {p.name: _mode(p) for p in files if p.is_file()} == {
            p.name: 0o600 for p in files if p.is_file()
        }
    finally:
        process.terminate()
        assert await process.wait() == 0


async def test_the_embedded_log_makes_its_files_private_under_any_umask(tmp_path: Path) -> None:
    """The spool and the embedded log, used as a library (no umask set by relay serve)."""
    previous = os.umask(0o022)
    try:
        log = EmbeddedLog(tmp_path / "fresh" / "data", "spool.sqlite3")
        await log.start()
        await log.publish([Record(topic="t", value=b"{}")])
        await log.close()
    finally:
        os.umask(previous)
    directory = tmp_path / "fresh" / "data"
    assert _mode(directory) == 0o700
    for path in directory.iterdir():
        assert _mode(path) == 0o600, path


async def test_a_reload_to_guessable_secrets_is_refused_beyond_loopback(tmp_path: Path) -> None:
    path = tmp_path / "relay.yaml"
    strong = "alpha-token-0123456789abcdef"
    text = f"data_dir: {tmp_path}\nsources: {{alpha: {{provider: chatwoot, tokens: [{strong}]}}}}\n"
    path.write_text(text)
    app = build_app(load(path), config_path=path)
    reloader = app[RELOADER]
    reloader.listen_host = "0.0.0.0"  # as relay serve --host 0.0.0.0 sets it
    path.write_text(text.replace(strong, "short"))
    try:
        await reloader.reload()
    except ReloadRefused as exc:
        assert "sources.alpha.tokens[0] is shorter than 16 bytes" in str(exc)
    else:
        raise AssertionError("the reload was accepted")
    assert reloader.config.sources["alpha"].tokens == [strong]
