"""The load and what is measured under it: bodies, wrk or bench.loadgen (closed and open
loop), the server's CPU and RSS, the soak, py-spy, and bench/fanout.py's figures.

Each function runs one measurement and returns its figures as a dict; ``bench.run`` puts
them together, ``bench.report`` prints them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.broker import pin
from bench.report import summary

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "chatwoot" / "message_created.json"


ID_SENTINEL = 987_654_321_987


def make_bodies(path: Path, variants: int) -> int:
    """``variants`` real-shaped Chatwoot message_created templates, one per line, as Rails
    sends them (compact, ``<>&`` escaped), each in a different conversation. The message id
    is ``@ID@``: the load generators put a fresh one in every request, so each is a distinct
    delivery (relay deduplicates retried deliveries by event id)."""
    payload = json.loads(FIXTURE.read_bytes())
    lines = []
    for i in range(variants):
        payload["id"] = ID_SENTINEL
        for message in payload["conversation"].get("messages", []):
            message["id"] = ID_SENTINEL
            message["conversation_id"] = 4_000 + i
        payload["conversation"]["id"] = 4_000 + i
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        lines.append(text.replace(str(ID_SENTINEL), "@ID@").encode())
    path.write_bytes(b"\n".join(lines) + b"\n")
    return len(lines[0].replace(b"@ID@", b"%d" % ID_SENTINEL))


_id_bases = iter(range(1, 1_000_000))


def id_base() -> int:
    """A different range of message ids for every load run, so no two runs share an id."""
    return (int(time.time()) % 100_000) * 10_000_000_000 + next(_id_bases) * 1_000_000_000


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU so far of a process (all its threads) and its live children (the
    workers of a supervisor or of a bare handler's copies)."""
    total = 0.0
    for one in (pid, *children(pid)):
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip()).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def run_wrk(
    url: str, bodies: Path, connections: int, duration: float, cpus: set[int] | None
) -> dict[str, Any]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{int(duration)}s", "--latency"]
    command += ["-s", str(ROOT / "bench" / "post.lua"), url, "--", str(bodies), str(id_base())]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=duration + 60,
        preexec_fn=(lambda: pin(cpus)) if cpus else None,
        check=True,
    )
    out = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    count = re.search(r"(\d+) requests in", out)
    pcts = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "tool": "wrk",
        "rps": rps,
        "requests": int(count.group(1)) if count else None,
        "p50_ms": _ms(pcts["50"]),
        "p90_ms": _ms(pcts["90"]),
        "p99_ms": _ms(pcts["99"]),
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else "",
        "raw": out,
    }


def run_loadgen(
    url: str,
    bodies: Path,
    *,
    connections: int,
    duration: float,
    warmup: float,
    rate: float | None,
    cpus: set[int] | None,
) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.loadgen", "--url", url, "--bodies", str(bodies)]
    command += ["--connections", str(connections), "--duration", str(duration)]
    command += ["--warmup", str(warmup), "--id-base", str(id_base())]
    if rate is not None:
        command += ["--rate", str(rate)]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=duration + warmup + 60,
        preexec_fn=(lambda: pin(cpus)) if cpus else None,
        check=True,
        cwd=ROOT,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    result["tool"] = "bench.loadgen"
    result["non_2xx"] = result["completed"] - result["ok"]
    return result


def closed_loop(
    url: str, bodies: Path, args: argparse.Namespace, cpus: set[int] | None, pid: int
) -> dict[str, Any]:
    if shutil.which("wrk") and not args.no_wrk:
        # warm up (JIT-less Python still has caches, connections, broker metadata)
        run_wrk(url, bodies, args.connections, args.warmup, cpus)
        # the server's own CPU a request: steadier than 1/(req/s) when other work shares
        # its core (the teammates' runs on this machine)
        before = cpu_seconds(pid)
        result = run_wrk(url, bodies, args.connections, args.duration, cpus)
        if result["requests"]:
            result["cpu_us"] = (cpu_seconds(pid) - before) / result["requests"] * 1e6
        return result
    return run_loadgen(
        url,
        bodies,
        connections=args.connections,
        duration=args.duration,
        warmup=args.warmup,
        rate=None,
        cpus=cpus,
    )


def soak(
    url: str,
    bodies: Path,
    args: argparse.Namespace,
    process: subprocess.Popen[bytes],
    cpus: set[int] | None,
) -> dict[str, Any]:
    """Open-loop load for ``args.soak`` seconds; relay's RSS sampled along the way."""
    print(f"## soak: {args.soak:.0f} s at {args.soak_rate:.0f} req/s", flush=True)
    pids = [process.pid, *children(process.pid)]
    before = sum(rss_kib(p) for p in pids)
    command = [sys.executable, "-m", "bench.loadgen", "--url", url, "--bodies", str(bodies)]
    command += ["--connections", str(args.connections), "--duration", str(args.soak)]
    command += ["--warmup", "0", "--rate", str(args.soak_rate), "--id-base", str(id_base())]
    gen = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        preexec_fn=(lambda: pin(cpus)) if cpus else None,
    )
    samples = [(0.0, before)]
    started = time.monotonic()
    while gen.poll() is None and time.monotonic() - started < args.soak + 120:
        time.sleep(min(5.0, max(1.0, args.soak / 12)))
        samples.append((round(time.monotonic() - started, 1), sum(rss_kib(p) for p in pids)))
    out, _ = gen.communicate(timeout=60)
    after = sum(rss_kib(p) for p in pids)
    load = json.loads(out)
    load["tool"] = "bench.loadgen"
    load["non_2xx"] = load["completed"] - load["ok"]
    result = {
        "seconds": args.soak,
        "rate": args.soak_rate,
        "rss_before_kib": before,
        "rss_after_kib": after,
        "rss_max_kib": max(s[1] for s in samples),
        "change_pct": round((after - before) / before * 100, 1),
        "samples": samples,
        "load": load,
    }
    print(
        f"   RSS {before / 1024:.1f} MiB → {after / 1024:.1f} MiB "
        f"({result['change_pct']:+.1f}%), max {result['rss_max_kib'] / 1024:.1f} MiB; "
        f"{summary(load)}",
        flush=True,
    )
    return result


@contextmanager
def profiling(into: Path | None, key: str, pid: int, args: argparse.Namespace) -> Iterator[None]:
    """py-spy (the bench extra) sampling ``pid`` and its children through the closed loop."""
    if into is None:
        yield
        return
    into.mkdir(parents=True, exist_ok=True)
    spy = str(Path(sys.executable).with_name("py-spy"))
    seconds = int(args.warmup + args.duration + 2)
    command = [spy, "record", "--pid", str(pid), "--subprocesses", "--rate", "200"]
    command += ["--duration", str(seconds), "--format", "raw", "--nonblocking"]
    command += ["--output", str(into / f"{key.replace('+', '_')}.txt")]
    sampler = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        try:
            sampler.wait(timeout=seconds + 10)
        except subprocess.TimeoutExpired:
            sampler.send_signal(signal.SIGINT)
            sampler.wait(timeout=10)


def run_fanout() -> dict[str, Any]:
    """Delivery's own benchmark (bench/fanout.py): deliveries/s, relay vs a bare client."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.fanout"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    out = done.stdout
    bare = re.search(r"\| bare aiohttp client \| ([\d,]+) \|", out)
    relay = re.search(r"\| relay delivery [^|]*\| ([\d,]+) \|", out)
    if done.returncode != 0 or bare is None or relay is None:
        return {"error": (out + done.stderr)[-2000:]}
    return {
        "bare_per_s": int(bare.group(1).replace(",", "")),
        "relay_per_s": int(relay.group(1).replace(",", "")),
        "table": out.strip(),
    }
