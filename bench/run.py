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
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.broker import create_topics, free_port, pin, tansu, wait_for_port

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = ROOT / "tests" / "fixtures" / "chatwoot" / "message_created.json"
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


@dataclass
class Target:
    key: str
    label: str
    command: list[str]
    results: dict[str, Any] = field(default_factory=dict)


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


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "—" if value is None else format(value, spec)


def machine() -> str:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().split("\n")[0].split()[1]
    return (
        f"{os.cpu_count()} cores ({cpu}), {int(mem) // 1024 // 1024 + 1} GiB, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


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


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def summary(r: dict[str, Any]) -> str:
    extra = f", non-2xx {r['non_2xx']}" if r.get("non_2xx") else ""
    if r.get("cpu_us"):
        extra += f", {r['cpu_us']:.0f} CPU µs a request"
    return (
        f"{r['rps']:.0f} req/s, p50 {fmt(r['p50_ms'])} ms, p99 {fmt(r['p99_ms'])} ms"
        f" [{r['tool']}]{extra}"
    )


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


def table(
    results: dict[str, Target],
    args: argparse.Namespace,
    body_size: int,
    fanout: dict[str, Any] | None = None,
) -> str:
    head = (
        f"closed loop: {args.connections} connections, {args.duration:.0f} s; "
        f"open loop: {args.rate:.0f} req/s offered for {args.rate_duration:.0f} s; "
        f"body {body_size} B"
    )
    rows = [
        f"| target | req/s | CPU µs a request | p50 ms | p99 ms "
        f"| p99 ms @ {args.rate:.0f}/s (achieved/s) | non-2xx |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for t in results.values():
        c, o = t.results["closed"], t.results["open"]
        rows.append(
            f"| {t.label} | {c['rps']:.0f} | {fmt(c.get('cpu_us'), '.0f')} "
            f"| {fmt(c['p50_ms'])} | {fmt(c['p99_ms'])} | "
            f"{fmt(o['p99_ms'])} ({o['rps']:.0f}) | {c['non_2xx'] + o['non_2xx']} |"
        )
    if fanout and "relay_per_s" in fanout:
        rows.append(
            f"| (d) fan-out to an HTTP subscriber (bench/fanout.py), deliveries/s | "
            f"{fanout['relay_per_s']} | — | — | — | — | — |"
        )
    else:
        rows.append("| (d) fan-out (bench/fanout.py) | not run | — | — | — | — | — |")
    lines = [head, "", *rows, ""]
    rps = {k: t.results["closed"]["rps"] for k, t in results.items()}
    cpu = {k: t.results["closed"].get("cpu_us") for k, t in results.items()}
    if "c" in rps:
        for base, target in (("a", "≥ 0.50"), ("b", "≥ 2.0"), ("b0", "")):
            if base in rps:
                goal = f" (target {target})" if target else ""
                by_cpu = (
                    f"; by CPU a request {cpu[base] / cpu['c']:.2f}"
                    if cpu[base] and cpu["c"]
                    else ""
                )
                lines.append(f"- (c)/({base}) req/s: {rps['c'] / rps[base]:.2f}{goal}{by_cpu}")
        if "e" in rps:
            by_cpu = (
                f"; by CPU a request {cpu['c'] / cpu['e']:.2f}" if cpu["c"] and cpu["e"] else ""
            )
            lines.append(f"- (e)/(c) req/s: {rps['e'] / rps['c']:.2f} (target ≥ 0.8){by_cpu}")
        o = results["c"].results["open"]
        lines.append(
            f"- (c) p99 at {args.rate:.0f} req/s offered: {fmt(o['p99_ms'])} ms (target ≤ 10)"
        )
        s = results["c"].results.get("soak")
        if s:
            lines.append(
                f"- (c) RSS over a {s['seconds']:.0f} s soak at {s['rate']:.0f} req/s: "
                f"{s['rss_before_kib'] / 1024:.1f} → {s['rss_after_kib'] / 1024:.1f} MiB "
                f"({s['change_pct']:+.1f}%, max {s['rss_max_kib'] / 1024:.1f} MiB; target ±10%); "
                f"latency meanwhile p50 {fmt(s['load']['p50_ms'])} ms, "
                f"p99 {fmt(s['load']['p99_ms'])} ms"
            )
    for traced, plain in (("c+t", "c"), ("e+t", "e")):
        if traced in rps and plain in rps:
            lines.append(f"- ({traced})/({plain}) req/s: {rps[traced] / rps[plain]:.2f}")
    if "c2" in rps and "a2" in rps:
        single = (
            f"; one process each: {rps['c'] / rps['a']:.2f}" if "c" in rps and "a" in rps else ""
        )
        lines.append(
            f"- (c2)/(a2) req/s, {args.workers} processes each: {rps['c2'] / rps['a2']:.2f} "
            f"(target: the one-process ratio or better{single})"
        )
    if fanout and "relay_per_s" in fanout:
        lines.append(
            f"- (d) fan-out: {fanout['relay_per_s']:,} deliveries/s, "
            f"{fanout['relay_per_s'] / fanout['bare_per_s']:.2f} of a bare aiohttp client's "
            f"{fanout['bare_per_s']:,}/s (targets ≥ 5,000/s and ≥ 0.50)"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
