"""Spool files are claimed one per process with a file lock, and taken over when freed."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from relay.bus.base import BusError
from relay.bus.claim import MAX_FILES, claim, lock_path, orphans, try_lock


def test_each_claim_takes_the_first_free_file_and_a_released_one_is_taken_again(
    tmp_path: Path,
) -> None:
    first = claim(tmp_path, "spool")
    second = claim(tmp_path, "spool")
    assert (first.file_name, second.file_name) == ("spool.sqlite3", "spool-1.sqlite3")
    first.release()
    again = claim(tmp_path, "spool")
    assert again.file_name == "spool.sqlite3"
    assert claim(tmp_path, "spool-delivery").file_name == "spool-delivery.sqlite3"
    assert (tmp_path / ".spool.sqlite3.lock").stat().st_mode & 0o777 == 0o600


def test_a_file_held_by_a_killed_process_is_free_again(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from relay.bus.claim import claim; "
            f"c = claim(Path({str(tmp_path)!r}), 'spool'); print(c.file_name, flush=True); "
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "spool.sqlite3"
        assert claim(tmp_path, "spool").file_name == "spool-1.sqlite3"
    finally:
        holder.kill()
        holder.wait()
    assert claim(tmp_path, "spool").file_name == "spool.sqlite3"


def _spool_with_records(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE records (value BLOB)")
    conn.execute("INSERT INTO records VALUES (x'01')")
    conn.commit()
    conn.close()


def test_a_claim_makes_its_data_dir_private_with_parents_and_releases_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "a" / "b"
    held = claim(data_dir, "spool")
    assert data_dir.stat().st_mode & 0o777 == 0o700
    held.release()
    held.release()  # a second release is a no-op
    assert try_lock(lock_path(data_dir, "spool.sqlite3")) is not None


def test_every_file_held_is_a_clear_error(tmp_path: Path) -> None:
    held = [claim(tmp_path, "spool") for _ in range(MAX_FILES)]
    with pytest.raises(BusError, match=rf"^all {MAX_FILES} spool files in .* are held by other"):
        claim(tmp_path, "spool")
    for each in held:
        each.release()


def test_orphans_are_the_free_files_of_the_base_that_hold_records(tmp_path: Path) -> None:
    # sorted: spool-1, spool-2, spool-3, spool-4, spool-5, spool-delivery, spool
    for name in ("spool-1", "spool-2", "spool-4", "spool-5", "spool-delivery", "spool"):
        _spool_with_records(tmp_path / f"{name}.sqlite3")
    (tmp_path / "spool-3.sqlite3").write_bytes(b"")  # not a spool yet: nothing to drain
    own = claim(tmp_path, "spool")  # spool.sqlite3
    other = try_lock(lock_path(tmp_path, "spool-2.sqlite3"))  # another live process
    assert other is not None

    found = orphans(tmp_path, "spool", own="spool-1.sqlite3")

    assert [each.file_name for each in found] == ["spool-4.sqlite3", "spool-5.sqlite3"]
    # each orphan stays locked until the caller releases it; the empty one was let go
    assert try_lock(lock_path(tmp_path, "spool-4.sqlite3")) is None
    assert try_lock(lock_path(tmp_path, "spool-3.sqlite3")) is not None
    for each in found:
        each.release()
    assert try_lock(lock_path(tmp_path, "spool-4.sqlite3")) is not None
    own.release()
    other.close()
