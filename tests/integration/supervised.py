"""``relay serve --workers N`` as a real process tree, for the tests that need workers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from tests.support import poll_until


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def lock_holder(path: Path) -> int | None:
    """The pid holding a ``flock`` on ``path`` (from /proc/locks), if any process does."""
    inode = path.stat().st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "FLOCK" in fields and fields[-3].endswith(f":{inode}"):
            return int(fields[-4])
    return None


class Supervised:
    """The supervisor process; its JSON log lines are kept in ``log`` (a file)."""

    def __init__(self, config: Path, port: int, workers: int, log: Path) -> None:
        self.config = config
        self.port = port
        self.workers = workers
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, *extra: str, wait: bool = True) -> None:
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "relay",
                "serve",
                "--config",
                str(self.config),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                *extra,
                env=os.environ.copy(),
                stdout=out,
                stderr=out,
            )
        if wait:
            await self.wait_listening(self.workers)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def lines(self) -> list[dict[str, Any]]:
        lines = []
        for raw in self.log.read_text().splitlines():
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue  # a traceback, a warning from a library
        return lines

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("event") == name]

    async def wait_listening(self, count: int) -> None:
        """Until the log holds ``count`` "listening" lines (one per worker start)."""
        assert self.process is not None
        process = self.process
        await poll_until(
            lambda: process.returncode is not None or len(self.events("listening")) >= count,
            within=40,
            what=f"{count} workers listening",
        )
        assert process.returncode is None, self.log.read_text()[-3000:]

    def workers_now(self) -> list[int]:
        return children(self.pid)

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    async def wait(self, within: float = 40) -> int:
        assert self.process is not None
        async with asyncio.timeout(within):
            return await self.process.wait()

    async def kill_all(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        workers = self.workers_now()
        self.process.kill()
        await self.process.wait()
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
