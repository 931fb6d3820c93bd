"""Spool files are claimed one per process with a file lock, and taken over when freed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from relay.bus.claim import claim


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
