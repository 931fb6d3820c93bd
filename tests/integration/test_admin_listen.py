"""``admin.listen``: /metrics and /admin/* on a listener of their own, off the hook port."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.support import free_port, wait_ready

TOKEN = "admin-token-0123456789"


def _config(tmp_path: Path, port: int, admin_port: int) -> Path:
    path = tmp_path / "relay.yaml"
    path.write_text(
        f"data_dir: {tmp_path / 'var'}\n"
        f"listen: {{host: 127.0.0.1, port: {port}}}\n"
        f"admin: {{token: {TOKEN}, listen: {{host: 127.0.0.1, port: {admin_port}}}}}\n"
        "sources: {nexloo: {provider: chatwoot, tokens: [t0k3n]}}\n"
        "logging: {format: json}\n"
    )
    return path


async def test_metrics_and_admin_move_to_the_admin_listener(tmp_path: Path) -> None:
    port, admin_port, configured = free_port(), free_port(), free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "relay",
        "serve",
        "--config",
        str(_config(tmp_path, port, configured)),
        "--admin-port",  # overrides admin.listen.port
        str(admin_port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        await wait_ready(port, process)
        public, admin = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin_port}"
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession() as session:
            hook = f"{public}/v1/hooks/nexloo?token=t0k3n"
            body = {"event": "conversation_created", "id": 1, "account_id": 1}
            async with session.post(hook, json=body) as response:
                assert response.status == 202
            for url, method, status in (
                (f"{public}/metrics", "GET", 404),
                (f"{public}/admin/reload", "POST", 404),
                (f"{public}/readyz", "GET", 200),
                (f"{admin}/readyz", "GET", 200),
                (f"{admin}/healthz", "GET", 200),
                (f"{admin}/v1/hooks/nexloo?token=t0k3n", "POST", 404),
            ):
                async with session.request(method, url, headers=bearer) as response:
                    assert response.status == status, (url, status)
                    assert response.content_type == "application/json", url
            async with session.get(f"{admin}/metrics") as response:
                assert response.status == 200
                assert 'relay_requests_total{outcome="accepted",source="nexloo"}' in (
                    await response.text()
                )
            async with session.post(f"{admin}/admin/reload", headers=bearer) as response:
                assert response.status == 200
                assert (await response.json())["reloaded"] is True
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 25) == 0
    assert process.stderr is not None
    lines = [json.loads(line) for line in (await process.stderr.read()).splitlines()]
    [listening] = [line for line in lines if line["event"] == "admin_listening"]
    assert listening["port"] == admin_port


def test_a_taken_admin_port_is_named(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        admin_port = holder.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "relay",
                "serve",
                "--config",
                str(_config(tmp_path, free_port(), admin_port)),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert result.stderr == (
        f"relay: cannot listen on 127.0.0.1:{admin_port} (admin.listen): the port is in use "
        "(another relay? change admin.listen.port)\n"
    )
