"""A small HTTP/1.1 load generator on raw asyncio transports (keep-alive, no pipelining).

Two modes:
- ``--rate R``: open loop. Requests are *scheduled* at a fixed rate whatever the server
  does; latency is measured from the scheduled time, so a stalled server shows up in the
  percentiles instead of slowing the generator down (no coordinated omission). This is
  what wrk2 does; wrk2 is not packaged in Debian.
- no ``--rate``: closed loop, every connection sends its next request as soon as the last
  one is answered (what wrk does; used when wrk is not installed).

It prints one JSON object. Bounded: it stops after ``--duration`` seconds plus at most
``--drain`` seconds for answers still in flight.

``python -m bench.loadgen --url http://127.0.0.1:PORT/path --bodies FILE [--rate 5000]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import sys
import time
from collections import deque
from collections.abc import Sequence
from urllib.parse import urlsplit


class Requests:
    """POST requests from body templates: ``@ID@`` in a template becomes a fresh id each time."""

    def __init__(self, url: str, templates: Sequence[bytes], id_base: int) -> None:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        self.head = (
            f"POST {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        ).encode()
        self.templates = [t.split(b"@ID@") for t in templates]
        self.index = 0
        self.next_id = id_base

    def next(self) -> bytes:
        self.index = (self.index + 1) % len(self.templates)
        self.next_id += 1
        body = (b"%d" % self.next_id).join(self.templates[self.index])
        return b"%s%d\r\n\r\n%s" % (self.head, len(body), body)


class Stats:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.errors = 0
        self.sent = 0


class Connection(asyncio.Protocol):
    def __init__(self, gen: Generator) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.started = 0.0
        self.busy = False
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, request: bytes, started: float) -> None:
        assert self.transport is not None
        self.busy = True
        self.started = started
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buffer[:end]).lower()
        at = head.find(b"\r\ncontent-length:")
        length = 0
        if at >= 0:
            stop = head.find(b"\r\n", at + 2)
            length = int(head[at + 17 : stop if stop >= 0 else len(head)])
        if len(buffer) < end + 4 + length:
            return
        status = int(buffer[9:12])
        del buffer[: end + 4 + length]
        self.busy = False
        self.gen.done(self, status, self.started)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.busy:
            self.busy = False
            self.gen.failed(self)


class Generator:
    def __init__(self, requests: Requests, measure_from: float) -> None:
        self.requests = requests
        self.stats = Stats()
        self.idle: deque[Connection] = deque()
        self.backlog: deque[float] = deque()
        self.measure_from = measure_from
        self.stopping = False
        self.in_flight = 0
        self.closed_loop = False
        self.drained = asyncio.Event()

    def dispatch(self, scheduled: float) -> None:
        """Send a request scheduled at ``scheduled``, or queue it until a connection is free."""
        if self.idle:
            # A free connection: timed from now, so the generator's own timer slack (libuv
            # timers tick in whole milliseconds) is not charged to the server.
            self._send(self.idle.popleft(), time.perf_counter())
        else:
            # Every connection is waiting on the server: timed from when it was due.
            self.backlog.append(scheduled)

    def _send(self, conn: Connection, scheduled: float) -> None:
        self.in_flight += 1
        self.stats.sent += 1
        conn.send(self.requests.next(), scheduled)

    def done(self, conn: Connection, status: int, started: float) -> None:
        now = time.perf_counter()
        self.in_flight -= 1
        if started >= self.measure_from:
            self.stats.latencies.append(now - started)
            self.stats.statuses[status] = self.stats.statuses.get(status, 0) + 1
        self._free(conn, now)

    def failed(self, conn: Connection) -> None:
        self.in_flight -= 1
        self.stats.errors += 1
        if self.stopping and self.in_flight == 0:
            self.drained.set()

    def _free(self, conn: Connection, now: float) -> None:
        if self.stopping:
            if self.in_flight == 0:
                self.drained.set()
            return
        if self.closed_loop:
            self._send(conn, now)
        elif self.backlog:
            self._send(conn, self.backlog.popleft())
        else:
            self.idle.append(conn)


async def run(
    url: str,
    bodies: Sequence[bytes],
    *,
    rate: float | None,
    duration: float,
    warmup: float,
    connections: int,
    drain: float,
    id_base: int = 0,
) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    start = time.perf_counter() + 0.2
    gen = Generator(Requests(url, bodies, id_base), measure_from=start + warmup)
    conns: list[Connection] = []
    for _ in range(connections):
        _, conn = await loop.create_connection(lambda: Connection(gen), host, port)
        conns.append(conn)
    gen.idle.extend(conns)
    end = start + warmup + duration
    usage_before = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.sleep(max(0.0, start - time.perf_counter()))
    if rate is None:
        gen.closed_loop = True
        for conn in list(gen.idle):
            gen.idle.remove(conn)
            gen._send(conn, time.perf_counter())
        await asyncio.sleep(max(0.0, end - time.perf_counter()))
    else:
        interval = 1.0 / rate
        scheduled = start
        while True:
            now = time.perf_counter()
            if now >= end:
                break
            while scheduled <= now:
                gen.dispatch(scheduled)
                scheduled += interval
            await asyncio.sleep(0.001)  # libuv timers have 1 ms resolution
    gen.stopping = True
    unsent = len(gen.backlog)
    if gen.in_flight:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gen.drained.wait(), drain)
    usage_after = resource.getrusage(resource.RUSAGE_SELF)
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()
    latencies = sorted(gen.stats.latencies)
    ok = sum(n for status, n in gen.stats.statuses.items() if 200 <= status < 300)

    def pct(p: float) -> float | None:
        if not latencies:
            return None
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    cpu = (usage_after.ru_utime + usage_after.ru_stime) - (
        usage_before.ru_utime + usage_before.ru_stime
    )
    return {
        "mode": "closed" if rate is None else "open",
        "offered_rate": rate,
        "connections": connections,
        "duration_s": duration,
        "completed": len(latencies),
        "ok": ok,
        "statuses": {str(k): v for k, v in sorted(gen.stats.statuses.items())},
        "errors": gen.stats.errors,
        "unsent_at_end": unsent,
        "still_in_flight": gen.in_flight,
        "rps": len(latencies) / duration,
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "p999_ms": pct(99.9),
        "max_ms": latencies[-1] * 1000 if latencies else None,
        "generator_cpu_s": round(cpu, 2),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    parser.add_argument("--url", required=True)
    parser.add_argument("--bodies", required=True, help="one JSON body (template) per line")
    parser.add_argument("--rate", type=float, help="requests/s (open loop); none: closed loop")
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--drain", type=float, default=10.0)
    parser.add_argument("--id-base", type=int, default=0, help="first @ID@ value, minus one")
    args = parser.parse_args(argv)
    if not args.url.startswith("http://127.") and "//localhost" not in args.url:
        parser.error("loopback targets only")
    with open(args.bodies, "rb") as f:
        bodies = [line.rstrip(b"\n") for line in f if line.strip()]
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run  # type: ignore[assignment]
    result = runner(
        run(
            args.url,
            bodies,
            rate=args.rate,
            duration=args.duration,
            warmup=args.warmup,
            connections=args.connections,
            drain=args.drain,
            id_base=args.id_base,
        )
    )
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
