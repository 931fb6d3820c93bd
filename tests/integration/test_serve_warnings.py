"""``relay serve`` logs what ``relay check`` warns about, and starts anyway."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

from tests.support import free_port, wait_ready


async def test_serve_logs_config_warnings(tmp_path: Path) -> None:
    port = free_port()
    path = tmp_path / "relay.yaml"
    path.write_text(
        f"data_dir: {tmp_path / 'var'}\n"
        f"listen: {{host: 127.0.0.1, port: {port}}}\n"
        "logging: {format: json}\n"
        "routes: [{name: r, match: {type: chat.messages.created}, topic: chat.messages}]\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "relay",
        "serve",
        "--config",
        str(path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        await wait_ready(port, process)
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 25) == 0
    assert process.stderr is not None
    lines = [json.loads(line) for line in (await process.stderr.read()).splitlines()]
    [warning] = [line for line in lines if line["event"] == "config_warning"]
    assert warning["level"] == "warning"
    assert "'chat.messages.created' matches no event type" in warning["detail"]
