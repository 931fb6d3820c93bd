"""``relay serve --workers N`` as a real process tree, for the tests that need workers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import Callable
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


def reserve_port() -> socket.socket:
    """A loopback port bound, not listening, with SO_REUSEADDR and SO_REUSEPORT: the
    supervisor (SO_REUSEADDR) can still bind it and listen, but no other test can be handed
    it while the socket is open.

    A port from ``free_port()`` is free again once it is returned, so two tests running at
    once could both get it (one of them would then be refused the port).
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


class Supervised:
    """The supervisor process; its JSON log lines are kept in ``log`` (a file). Its port is
    reserved for it (:func:`reserve_port`) until :meth:`kill_all`."""

    def __init__(self, config: Path, workers: int, log: Path, port: int | None = None) -> None:
        """``port``: another relay's (whose reservation keeps it), instead of a new one."""
        self.config = config
        self._reservation = reserve_port() if port is None else None
        if self._reservation is not None:
            port = self._reservation.getsockname()[1]
        assert port is not None
        self.port: int = port
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

    async def poll(self, check: Callable[[], object], within: float, what: str) -> None:
        """:func:`poll_until`, and on failure the last lines of the log (who logged what,
        when): a wait that times out on a loaded machine says why."""
        try:
            await poll_until(check, within=within, what=what)
        except AssertionError as exc:
            tail = [
                f"{line.get('timestamp', '?')[11:23]} {line.get('worker', 'S')} {line.get('event')}"
                for line in self.lines()[-40:]
            ]
            raise AssertionError(f"{exc}; the log ends:\n" + "\n".join(tail)) from None

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
        try:
            await self._kill_all()
        finally:
            if self._reservation is not None:
                self._reservation.close()

    async def _kill_all(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        workers = self.workers_now()
        self.process.kill()
        await self.process.wait()
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
