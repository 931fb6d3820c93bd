"""Who this process is under ``relay serve --workers N``: its slot, and its supervisor.

The supervisor (relay.app.supervisor) starts each worker as ``relay serve`` again with
these variables set; a process without them is a single relay, exactly as without workers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

SLOT_ENV = "RELAY_WORKER_SLOT"
COUNT_ENV = "RELAY_WORKERS"
SUPERVISOR_ENV = "RELAY_SUPERVISOR_PID"
LISTEN_FDS_ENV = "RELAY_LISTEN_FDS"
"""The listening sockets the supervisor bound, as file descriptors the worker inherited."""
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client's multiprocess mode: every worker writes its samples to files there."""


class Worker(msgspec.Struct, frozen=True):
    slot: int
    """0 .. count-1; slot 0 also runs what must run once (the admin listener, the index)."""
    count: int
    supervisor: int
    """The supervisor's pid: a worker whose parent changes has lost it, and stops."""
    listen_fds: tuple[int, ...] = ()
    """The supervisor's listening sockets for ``listen`` (one per address the host names)."""


def current(env: Mapping[str, str] | None = None) -> Worker | None:
    env = os.environ if env is None else env
    if SLOT_ENV not in env:
        return None
    fds = env.get(LISTEN_FDS_ENV, "")
    return Worker(
        slot=int(env[SLOT_ENV]),
        count=int(env[COUNT_ENV]),
        supervisor=int(env[SUPERVISOR_ENV]),
        listen_fds=tuple(int(fd) for fd in fds.split(",") if fd),
    )


def count(value: int | str) -> int:
    """``workers:`` as a number of processes: ``auto`` is the cores this process may use."""
    if value == "auto":
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            return max(1, os.cpu_count() or 1)
    number = int(value)
    if number < 1:
        raise ValueError(f"workers: {value!r} is not a number of processes (1 or more, or auto)")
    return number
