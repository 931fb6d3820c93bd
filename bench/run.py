"""One command, one table: ``python -m bench`` (or ``bench/run.sh``). See bench/README.md.

Starts Tansu, then, one after the other on the same machine and broker:
  (a) bare aiohttp handler (the ceiling), (b) naive relay (send_and_wait per record),
  (b0) forwarder (one send_and_wait of the body), (c) ``relay serve`` on Kafka;
closed-loop load (wrk, or bench.loadgen without it) at fixed concurrency and duration,
then an open-loop run at a fixed offered rate (p99 at 5,000 req/s by default), then a
bounded soak of relay with its RSS sampled. Prints one Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.broker import create_topics, free_port, pin, tansu, wait_for_port
from bench.load import (
    ROOT,
    children,
    closed_loop,
    make_bodies,
    profiling,
    rss_kib,
    run_fanout,
    run_loadgen,
    soak,
)
from bench.report import Target, machine, summary, table

TOKEN = "bench-token"
HOOK = f"/v1/hooks/nexloo?token={TOKEN}"
TOPICS = ["relay.raw", "chat.events", "chat.messages", "relay.deadletter", "bench.forward"]

RELAY_CONFIG = """\
listen: {{host: 127.0.0.1, port: {port}}}
data_dir: {data_dir}
{kafka}
sources:
  nexloo: {{provider: chatwoot, tokens: ["{token}"]}}
routes:
  - {{name: messages, match: {{type: "chat.message.*"}}, topic: chat.messages}}
logging: {{level: info, format: json}}
{extra}
"""


@contextmanager
def serving(
    target: Target, port: int, cpus: set[int] | None, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            target.command,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=(lambda: pin(cpus)) if cpus else None,
            cwd=ROOT,
        )
    try:
        wait_for_port(port, timeout=20)
        if target.key in ("c", "e", "c2", "c+t", "e+t"):
            wait_ready(port)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=25)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def otlp_sink(wanted: bool, cpus: set[int] | None) -> Iterator[int | None]:
    """bench.otlp_sink on a free port (beside the load generator), for the traced rows."""
    if not wanted:
        yield None
        return
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.otlp_sink", "--port", str(port)],
        cwd=ROOT,
        preexec_fn=(lambda: pin(cpus)) if cpus else None,
    )
    try:
        wait_for_port(port)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def wait_ready(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1):
                return
        except OSError:  # refused; or, under --workers, waiting in the backlog: timed out
            if time.monotonic() > deadline:
                raise RuntimeError("relay did not become ready") from None
            time.sleep(0.1)


def wait_workers(pid: int, count: int, timeout: float = 30.0) -> None:
    """Until ``count`` processes serve: the supervisor's children (relay), or the first
    process and its copies (bench.targets), each listening for a moment already."""
    deadline = time.monotonic() + timeout
    while True:
        found = children(pid)
        listening = [p for p in found if _listens(p)]
        if len(listening) >= count or (len(listening) == count - 1 and _listens(pid)):
            time.sleep(1.0)  # the last one's listen may be a moment behind its socket
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{count} workers did not start within {timeout} s")
        time.sleep(0.2)


def _listens(pid: int) -> bool:
    """Whether a process has a listening TCP socket (state 0A in /proc/net/tcp)."""
    try:
        inodes = {
            os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1]
            for fd in os.listdir(f"/proc/{pid}/fd")
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
        }
    except OSError:
        return False
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and fields[9] in inodes:
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--duration", type=float, default=15, help="closed-loop seconds")
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rate", type=float, default=5000, help="open-loop offered req/s")
    parser.add_argument("--rate-duration", type=float, default=20)
    parser.add_argument("--soak", type=float, default=60, help="soak seconds (600: 10 min)")
    parser.add_argument("--soak-rate", type=float, default=2000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--variants", type=int, default=64, help="distinct bodies")
    parser.add_argument(
        "--targets",
        default="a,b,b0,c,e",
        help="subset of a,a+n,b0,b,c1,c0,c,c+t,e,e+t (+t: traced, to bench.otlp_sink); "
        "--workers N adds a2,c2",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin the server to CPU 0")
    parser.add_argument("--no-wrk", action="store_true", help="closed loop with bench.loadgen")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--no-fanout", action="store_true", help="skip bench/fanout.py")
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="also (a2) the bare handler and (c2) relay serve with this many processes on the "
        "port, neither pinned",
    )
    parser.add_argument(
        "--relay-yaml",
        default="",
        help='extra top-level YAML for relay, e.g. "dedupe: {window: 0s}"',
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy each server during its closed loop; raw stacks go to DIR/<target>.txt",
    )
    parser.add_argument(
        "--diagnose",
        action="store_true",
        help="also run (a+n) bare+normalizer, (c0) relay on a null bus, (c1) without spool",
    )
    args = parser.parse_args(argv)

    ncpu = os.cpu_count() or 1
    server_cpus: set[int] | None = None if args.no_pin or ncpu < 2 else {0}
    other_cpus: set[int] | None = None if server_cpus is None else set(range(1, ncpu))

    work = Path(tempfile.mkdtemp(prefix="relay-bench-"))
    bodies = work / "bodies.txt"
    body_size = make_bodies(bodies, args.variants)
    logs = work / "servers.log"
    wanted = set(args.targets.split(","))
    if args.diagnose:
        wanted |= {"a+n", "c0", "c1"}
    if args.workers > 1:
        wanted |= {"a2", "c2"} | ({"c02"} if args.diagnose else set())
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    report: dict[str, Any] = {"machine": machine(), "body_bytes": body_size, "args": settings}
    report["loadavg_at_start"] = Path("/proc/loadavg").read_text().split()[:3]
    print(f"# relay bench — {report['machine']}", flush=True)
    print(f"# load average at start: {' '.join(report['loadavg_at_start'])}", flush=True)
    print(f"# body {body_size} B, work dir {work}, server logs {logs}", flush=True)

    traced = bool(wanted & {"c+t", "e+t"})
    with tansu(other_cpus) as (bootstrap, broker), otlp_sink(traced, other_cpus) as sink:
        create_topics(bootstrap, TOPICS, args.partitions)
        config = work / "relay.yaml"
        embedded = work / "relay-embedded.yaml"
        config_traced = work / "relay-traced.yaml"
        embedded_traced = work / "relay-embedded-traced.yaml"
        tracing = f"telemetry: {{otlp_endpoint: 'http://127.0.0.1:{sink}'}}\n" if sink else ""

        def targets(port: int) -> list[Target]:
            kafka = f'kafka: {{bootstrap_servers: "{bootstrap}", client_id: relay-bench, '
            kafka += "idempotence: false}"
            for path, bus, data, extra in (
                (config, kafka, "var", ""),
                (embedded, "", "var-embedded", ""),
                (config_traced, kafka, "var", tracing),
                (embedded_traced, "", "var-embedded", tracing),
            ):
                path.write_text(
                    RELAY_CONFIG.format(
                        port=port,
                        data_dir=work / data,
                        kafka=bus,
                        token=TOKEN,
                        extra=extra + args.relay_yaml,
                    )
                )
            py = sys.executable
            relay = [py, "-m", "relay", "serve", "--config", str(config)]
            workers = ["--workers", str(args.workers)]
            every = [
                Target("a", "(a) bare aiohttp handler", [py, "-m", "bench.targets", "bare"]),
                Target(
                    "b",
                    "(b) naive relay: send_and_wait per record",
                    [py, "-m", "bench.targets", "naive", "--config", str(config)],
                ),
                Target(
                    "b0",
                    "(b0) forwarder: one send_and_wait of the body",
                    [py, "-m", "bench.targets", "forward", "--bootstrap", bootstrap],
                ),
                Target("c", "(c) relay serve (Kafka, 202 after ack)", relay),
                Target(
                    "e",
                    "(e) relay serve on the embedded log (202 after fsync)",
                    [py, "-m", "relay", "serve", "--config", str(embedded)],
                ),
                Target(
                    "c+t",
                    "(c+t) relay serve on Kafka, traced (OTLP to a local sink)",
                    [py, "-m", "relay", "serve", "--config", str(config_traced)],
                ),
                Target(
                    "e+t",
                    "(e+t) relay serve on the embedded log, traced",
                    [py, "-m", "relay", "serve", "--config", str(embedded_traced)],
                ),
                Target(
                    "a2",
                    f"(a2) bare aiohttp handler, {args.workers} processes",
                    [py, "-m", "bench.targets", "bare", "--workers", str(args.workers)],
                ),
                Target(
                    "c2",
                    f"(c2) relay serve --workers {args.workers} (Kafka)",
                    [*relay, "--workers", str(args.workers)],
                ),
                Target(
                    "c02",
                    f"(c02) relay app on a null bus, {args.workers} processes (diagnostic)",
                    [py, "-m", "bench.targets", "nullbus", "--config", str(config), *workers],
                ),
                Target(
                    "a+n",
                    "(a+n) bare handler + Chatwoot normalizer (diagnostic)",
                    [py, "-m", "bench.targets", "normalize"],
                ),
                Target(
                    "c1",
                    "(c1) relay app on the group-commit bus, no spool (diagnostic)",
                    [py, "-m", "bench.targets", "group", "--config", str(config)],
                ),
                Target(
                    "c0",
                    "(c0) relay app on a null bus (diagnostic)",
                    [py, "-m", "bench.targets", "nullbus", "--config", str(config)],
                ),
            ]
            for t in every:
                if t.key not in ("c", "c2", "c+t"):
                    t.command += ["--port", str(port)]
            order = ["a", "a+n", "b0", "b", "c1", "c0", "c", "c+t", "e", "e+t", "a2", "c02", "c2"]
            return sorted((t for t in every if t.key in wanted), key=lambda t: order.index(t.key))

        results: dict[str, Target] = {}
        for target in targets(0):
            port = free_port()
            [target] = [t for t in targets(port) if t.key == target.key]
            url = f"http://127.0.0.1:{port}{HOOK}"
            print(f"## {target.label}: closed loop, {args.connections} connections", flush=True)
            # several processes need every core: neither they nor the load are pinned
            many = target.key in ("a2", "c02", "c2")
            pinned, load_cpus = (None, None) if many else (server_cpus, other_cpus)
            with serving(target, port, pinned, logs) as process:
                if many:
                    wait_workers(process.pid, args.workers)
                with profiling(args.profile, target.key, process.pid, args):
                    target.results["closed"] = closed_loop(
                        url, bodies, args, load_cpus, process.pid
                    )
                print(f"   {summary(target.results['closed'])}", flush=True)
                print(f"## {target.label}: open loop at {args.rate:.0f} req/s", flush=True)
                target.results["open"] = run_loadgen(
                    url,
                    bodies,
                    connections=args.connections,
                    duration=args.rate_duration,
                    warmup=2,
                    rate=args.rate,
                    cpus=load_cpus,
                )
                print(f"   {summary(target.results['open'])}", flush=True)
                if target.key == "c" and args.soak > 0:
                    target.results["soak"] = soak(url, bodies, args, process, other_cpus)
            results[target.key] = target
            report.setdefault("broker_rss_kib", []).append(rss_kib(broker.pid))
        if sink:
            with urllib.request.urlopen(f"http://127.0.0.1:{sink}/count", timeout=5) as answer:
                report["otlp_sink"] = json.loads(answer.read())
            print(f"## OTLP sink received {report['otlp_sink']}", flush=True)

    if not args.no_fanout:
        print("## (d) fan-out: python -m bench.fanout", flush=True)
        report["fanout"] = run_fanout()
        print(f"   {report['fanout']}", flush=True)
    for data in ("var", "var-embedded"):  # the logs and spools written under load (~GBs)
        shutil.rmtree(work / data, ignore_errors=True)
    report["results"] = {k: t.results for k, t in results.items()}
    for t in report["results"].values():
        for phase in t.values():
            if isinstance(phase, dict):
                phase.pop("raw", None)
    print()
    print(table(results, args, body_size, report.get("fanout")))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
