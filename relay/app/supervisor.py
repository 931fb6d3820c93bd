"""``relay serve --workers N``: N worker processes on one port, and a supervisor over them.

Each worker is ``relay serve`` again (a fresh interpreter), told its slot through the
environment (relay.workers). The supervisor binds the port once (relay.app.serve.bind,
without ``SO_REUSEPORT``: a second relay asking for it is refused) and every worker
inherits that listening socket and accepts from it. Otherwise the supervisor only watches:

- a worker that exits while relay is running is started again in its slot, after a delay
  that doubles while it keeps dying young (logged each time); one that dies young five
  times in a row stops relay (a configuration or a broker that refuses it will not change);
- SIGTERM or SIGINT goes to every worker, which drains as a single relay does; the
  supervisor exits once all have (0 when every one exited 0), killing any still there
  after the grace and a margin;
- SIGHUP goes to every worker: each reloads the configuration.

Workers run in a session of their own, so a terminal's Ctrl-C reaches the supervisor only
and they stop in order, not all at once behind its back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import structlog

from relay.workers import COUNT_ENV, LISTEN_FDS_ENV, METRICS_ENV, SLOT_ENV, SUPERVISOR_ENV

log = structlog.get_logger("relay.supervisor")

RESTART_MIN, RESTART_MAX = 0.5, 30.0
YOUNG_SECONDS = 10.0
"""A worker that dies sooner than this after starting counts towards giving up."""
GIVE_UP_AFTER = 5
KILL_MARGIN = 10.0


def prepare_metrics_dir(path: Path) -> None:
    """The multiprocess metrics directory, emptied: a previous run's files would add up."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    for file in path.glob("*.db"):
        file.unlink(missing_ok=True)


def restart_delay(young_deaths: int) -> float:
    """0.5 s after the first early death, doubling up to 30 s."""
    return min(RESTART_MAX, RESTART_MIN * 2.0 ** max(0, young_deaths - 1))


class Supervisor:
    def __init__(
        self,
        command: Sequence[str],
        count: int,
        grace: float,
        metrics_dir: Path | None = None,
        sockets: Sequence[socket.socket] = (),
    ) -> None:
        """``command``: the worker's ``relay`` arguments (``serve --config ...``);
        ``sockets``: the listening sockets every worker inherits."""
        self.command = list(command)
        self.sockets = list(sockets)
        self.fds = tuple(sock.fileno() for sock in sockets)
        self.count = count
        self.grace = grace
        self.metrics_dir = metrics_dir
        self.processes: dict[int, asyncio.subprocess.Process] = {}
        self._stopping = asyncio.Event()
        self._failed = False

    def _env(self, slot: int) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {SLOT_ENV: str(slot), COUNT_ENV: str(self.count), SUPERVISOR_ENV: str(os.getpid())}
        )
        if self.metrics_dir is not None:
            env[METRICS_ENV] = str(self.metrics_dir)
        env[LISTEN_FDS_ENV] = ",".join(map(str, self.fds))
        return env

    async def _spawn(self, slot: int) -> asyncio.subprocess.Process:
        # A worker ignores SIGHUP until it can reload (ignoring survives exec): the default
        # action would end a worker still starting when a reload comes
        loop = asyncio.get_running_loop()
        loop.remove_signal_handler(signal.SIGHUP)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "relay",
                *self.command,
                env=self._env(slot),
                start_new_session=True,
                pass_fds=self.fds,
            )
        finally:
            loop.add_signal_handler(signal.SIGHUP, self.reload)
        self.processes[slot] = process
        log.info("worker_started", slot=slot, pid=process.pid)
        return process

    def _forget(self, pid: int) -> None:
        if self.metrics_dir is not None:
            from prometheus_client import multiprocess

            # its live gauges go; its counters stay (what it counted did happen)
            multiprocess.mark_process_dead(pid, str(self.metrics_dir))  # type: ignore[no-untyped-call]

    async def _keep(self, slot: int) -> int:
        """Run one slot until relay stops; the slot's last exit status."""
        young_deaths = 0
        while not self._stopping.is_set():  # (its sockets are closed then)
            started = time.monotonic()
            process = await self._spawn(slot)
            if self._stopping.is_set():  # stopped while it was being started
                process.send_signal(signal.SIGTERM)
            code = await process.wait()
            self._forget(process.pid)
            if self._stopping.is_set():
                log.info("worker_stopped", slot=slot, pid=process.pid, code=code)
                return code
            young_deaths = young_deaths + 1 if time.monotonic() - started < YOUNG_SECONDS else 1
            if young_deaths >= GIVE_UP_AFTER:
                log.error(
                    "worker_keeps_dying",
                    slot=slot,
                    pid=process.pid,
                    code=code,
                    deaths=young_deaths,
                    hint="relay stops: see the worker's last lines above",
                )
                self._failed = True
                self.stop(signal.SIGTERM)
                return code
            delay = restart_delay(young_deaths)
            log.error("worker_exited", slot=slot, pid=process.pid, code=code, restart_in=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
        return 0

    def _send(self, sig: int) -> None:
        for process in self.processes.values():
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if not self._stopping.is_set():
            log.info("workers_stopping", signal=signal.Signals(sig).name, workers=self.count)
            self._stopping.set()
            # the port closes once the workers have closed their copies, as with one relay
            for sock in self.sockets:
                sock.close()
        self._send(signal.SIGTERM)

    def reload(self) -> None:
        if self._stopping.is_set():
            return  # a worker that stopped listening for SIGHUP would die of it
        log.info("workers_reloading", workers=self.count)
        self._send(signal.SIGHUP)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop, sig)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        log.info("workers_starting", workers=self.count, pid=os.getpid())
        slots = [asyncio.create_task(self._keep(slot)) for slot in range(self.count)]
        await self._stopping.wait()
        _, late = await asyncio.wait(slots, timeout=self.grace + KILL_MARGIN)
        if late:
            log.error("workers_killed", workers=len(late), after_seconds=self.grace + KILL_MARGIN)
            self._send(signal.SIGKILL)
        codes = await asyncio.gather(*slots)
        log.info("workers_stopped", codes=codes)
        return 1 if self._failed or any(codes) else 0
