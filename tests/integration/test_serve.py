"""``relay serve`` as a process, on its embedded default: accepts, and survives a restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from relay.bus.embedded import LOG_FILE, read
from tests.support import free_port

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "config" / "relay.example.yaml"


@contextmanager
def serving(data_dir: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "RELAY_DATA_DIR": str(data_dir), "RELAY_PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "relay", "serve", "--config", str(EXAMPLE)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60  # a bound for a loaded CI machine, not a timing
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1):
                    break
            except OSError:  # refused, or (a loaded machine) a read timed out
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read().decode() if process.stdout else ""
                    raise AssertionError(f"relay did not become ready:\n{output}") from None
                time.sleep(0.05)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=25)


def post(port: int, payload: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/hooks/nexloo?token=dev-nexloo-token",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 202
        answer: dict[str, object] = json.loads(response.read())
        return answer


def conversation(display_id: int) -> dict[str, object]:
    return {"event": "conversation_created", "id": display_id, "account_id": 1, "status": "open"}


def test_serve_on_the_embedded_log_survives_a_restart(tmp_path: Path) -> None:
    port = free_port()
    with serving(tmp_path, port) as process:
        first = post(port, conversation(1))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=25) == 0
    with serving(tmp_path, port):
        second = post(port, conversation(2))
        stored = read(tmp_path / LOG_FILE, topic="chat.events")
        ids = [json.loads(r.value)["id"] for r in stored]
        assert ids == [*first["ids"], *second["ids"]]  # type: ignore[misc]

    tail = subprocess.run(
        [sys.executable, "-m", "relay", "tail", "--config", str(EXAMPLE)],
        env={**os.environ, "RELAY_DATA_DIR": str(tmp_path)},
        capture_output=True,
        check=True,
    )
    assert [json.loads(line)["id"] for line in tail.stdout.splitlines()] == ids


def test_slow_headers_are_cut_off(tmp_path: Path) -> None:
    """Slowloris: a connection dribbling its request head is closed after header_timeout."""
    import select
    import socket

    config = tmp_path / "relay.yaml"
    config.write_text(f"data_dir: {tmp_path}\nlimits: {{header_timeout: 1s}}\n")
    port = free_port()
    process = subprocess.Popen(
        [
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
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60  # a bound for a loaded CI machine, not a timing
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5):
                    break
            except OSError:  # refused, or (a loaded machine) a read timed out
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"POST /v1/hooks/x HTTP/1.1\r\nHost: relay\r\n")
            closed = False
            # one header byte every 0.2 s, never a complete head, for 30 s: aiohttp alone
            # would wait for the rest for ever. The guard sweeps every half timeout, so it
            # closes within ~2 s on a quiet machine; a loaded one may starve relay for
            # seconds, which the bound no longer mistakes for a connection kept open.
            for _ in range(150):
                if select.select([sock], [], [], 0.2)[0]:
                    closed = sock.recv(100) == b""
                    break
                try:
                    sock.sendall(b"X")
                except OSError:
                    closed = True
                    break
            assert closed, "relay kept a dribbling connection open"
        # and a normal request still works
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert response.status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=25) == 0


async def test_embedded_log_retention(tmp_path: Path) -> None:
    import asyncio

    from relay.bus import Record
    from relay.bus.embedded import EmbeddedLog

    log = EmbeddedLog(tmp_path, retention=0.2)
    log.trim_interval = 0
    await log.start()
    try:
        await log.publish([Record(topic="t", value=b"old")])
        await asyncio.sleep(0.3)
        await log.publish([Record(topic="t", value=b"new")])  # trims what is past retention
    finally:
        await log.close()
    assert [r.value for r in read(tmp_path / LOG_FILE, topic="t")] == [b"new"]
