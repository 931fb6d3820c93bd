"""One spool file per process: the first one nobody holds, claimed with a file lock.

Several processes on one ``data_dir`` (``relay serve --workers N``, or roles side by side)
each spool to a file of their own: ``spool.sqlite3``, ``spool-1.sqlite3``, ... A process
takes the first whose lock is free and holds the lock until it closes. A worker killed
with ``kill -9`` drops its lock with its life, so whichever process starts next takes its
file over and drains what it left there.
"""

from __future__ import annotations

import fcntl
import os
import re
import sqlite3
from pathlib import Path
from typing import BinaryIO

from relay.bus.base import BusError

MAX_FILES = 256


class Claim:
    def __init__(self, file_name: str, handle: BinaryIO) -> None:
        self.file_name = file_name
        self._handle: BinaryIO | None = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the descriptor releases the lock
            self._handle = None


def spool_name(base: str, index: int) -> str:
    return f"{base}.sqlite3" if index == 0 else f"{base}-{index}.sqlite3"


def lock_path(data_dir: Path, file_name: str) -> Path:
    return data_dir / f".{file_name}.lock"


def try_lock(path: Path) -> BinaryIO | None:
    """The open lock file when this process now holds it; None when another one does."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    handle = os.fdopen(fd, "a+b")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def claim(data_dir: Path, base: str) -> Claim:
    """The first spool file of ``base`` no other process holds (blocking: call off the loop)."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for index in range(MAX_FILES):
        name = spool_name(base, index)
        handle = try_lock(lock_path(data_dir, name))
        if handle is not None:
            return Claim(name, handle)
    raise BusError(f"all {MAX_FILES} spool files in {data_dir} are held by other processes")


def _has_records(path: Path) -> bool:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT 1 FROM records LIMIT 1").fetchone() is not None
    except sqlite3.Error:  # not a spool (yet): nothing to drain
        return False
    finally:
        conn.close()


def orphans(data_dir: Path, base: str, own: str) -> list[Claim]:
    """Other spool files of ``base`` that hold records and that no process holds: left by
    a worker that is not coming back (``workers`` lowered). Claimed, for the caller to drain
    and release. Blocking: call off the loop."""
    pattern = re.compile(rf"^{re.escape(base)}(-[0-9]+)?\.sqlite3$")
    found = []
    for path in sorted(data_dir.glob(f"{base}*.sqlite3")):
        if path.name == own or not pattern.match(path.name):
            continue
        handle = try_lock(lock_path(data_dir, path.name))
        if handle is None:
            continue
        held = Claim(path.name, handle)
        if _has_records(path):
            found.append(held)
        else:
            held.release()
    return found
