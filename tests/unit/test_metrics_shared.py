"""The live gauges across workers: each worker's copy in the multiprocess files, combined
per gauge (sums for lag and spool depth, the highest breaker state), a dead one dropped."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

WORKER = """
import sys
from relay.metrics import LIVE
from relay.metrics_shared import LivePublisher
lag, circuit = float(sys.argv[1]), float(sys.argv[2])
LIVE.put("relay_consumer_lag", "crm", lambda: [(("crm",), lag)])
LIVE.put("relay_circuit_state", "crm", lambda: [(("crm",), circuit)])
LivePublisher().publish()
import os
print(os.getpid())
"""
SCRAPE = """
from prometheus_client import multiprocess
import sys
for pid in sys.argv[1:]:
    multiprocess.mark_process_dead(int(pid))
from relay.metrics import exposition
print(exposition()[0].decode())
"""


def run(code: str, metrics: Path, *args: str) -> str:
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def gauges(text: str) -> dict[str, float]:
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name in ("relay_consumer_lag", "relay_circuit_state")
    }


def test_live_gauges_combine_per_gauge_and_a_dead_worker_drops_out(tmp_path: Path) -> None:
    first = run(WORKER, tmp_path, "3", "0").strip()
    run(WORKER, tmp_path, "4", "2")
    assert gauges(run(SCRAPE, tmp_path)) == {"relay_consumer_lag": 7, "relay_circuit_state": 2}
    # the supervisor marks an exited worker dead: its readings go
    assert gauges(run(SCRAPE, tmp_path, first)) == {
        "relay_consumer_lag": 4,
        "relay_circuit_state": 2,
    }
