"""The figures as text: one line a run while it goes, then the Markdown table and the
ratios against the targets (bench/README.md explains each row)."""

from __future__ import annotations

import argparse
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Target:
    """A server under test, its command and its figures: a row of the table."""

    key: str
    label: str
    command: list[str]
    results: dict[str, Any] = field(default_factory=dict)


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


def summary(r: dict[str, Any]) -> str:
    extra = f", non-2xx {r['non_2xx']}" if r.get("non_2xx") else ""
    if r.get("cpu_us"):
        extra += f", {r['cpu_us']:.0f} CPU µs a request"
    return (
        f"{r['rps']:.0f} req/s, p50 {fmt(r['p50_ms'])} ms, p99 {fmt(r['p99_ms'])} ms"
        f" [{r['tool']}]{extra}"
    )


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
