"""Fan-out benchmark: deliveries/s from Kafka to a local HTTP subscriber.

Measures, against the same subscriber process (``--subscriber-kind``: a lean asyncio +
httptools server by default, so the subscriber is not the ceiling; or an aiohttp server):

- **bare**: an aiohttp client posting the same CloudEvent bodies as fast as it can with the
  same connection limit (the ceiling for an aiohttp client in one process);
- **relay**: relay's delivery worker reading the events from Kafka (Tansu), filtering,
  signing (Standard Webhooks), keeping per-key order, committing watermarks.

Both run on uvloop, with the same connection limit, against the same subscriber, in the
same run: the bare client before and after relay (the machine is shared; relay is compared
with their mean). Besides deliveries/s it reports the CPU time of this process per delivery,
which moves less than the rate when other processes compete for the cores.

Run: ``.venv/bin/python -m bench.fanout [--events 20000] [--concurrency 64] [--keys 2000]``;
``--traced``: relay's delivery traces every attempt (events carry a traceparent, spans go over
OTLP/HTTP to the subscriber process, which takes ``/v1/traces`` too).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

import aiohttp
from aiohttp import web

from bench.broker import create_topics, free_port, tansu, wait_for_port
from relay.app.serve import new_event_loop

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


# --- the subscriber, in its own process -------------------------------------------------


def subscriber_main(port: int) -> None:
    received = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal received
        await request.read()
        received += 1
        return web.Response(status=204)

    async def count(request: web.Request) -> web.Response:
        return web.json_response({"received": received})

    async def traces(request: web.Request) -> web.Response:  # an OTLP sink for --traced
        await request.read()
        return web.Response(status=200)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/traces", traces)
    app.router.add_post("/hook", hook)
    app.router.add_get("/count", count)
    web.run_app(
        app, host="127.0.0.1", port=port, print=None, access_log=None, loop=new_event_loop()
    )


class _LeanHook(asyncio.Protocol):
    """The lean subscriber's connection: httptools parses each request, any POST gets 204,
    ``GET /count`` the count (so an aiohttp subscriber is not the ceiling being measured)."""

    received = 0

    def __init__(self) -> None:
        import httptools

        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_message_complete(self) -> None:
        assert self.transport is not None
        if self.parser.get_method() == b"GET":
            body = json.dumps({"received": _LeanHook.received}).encode()
            head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            self.transport.write(head + b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        else:
            if self.url.startswith(b"/hook"):
                _LeanHook.received += 1
            self.transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        self.url = b""
        if not self.parser.should_keep_alive():
            self.transport.close()


def lean_subscriber_main(port: int) -> None:
    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_LeanHook, "127.0.0.1", port)
        await server.serve_forever()

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(serve())


# --- measurements ------------------------------------------------------------------------


def events(n: int, keys: int, traced: bool = False) -> list[Any]:
    """``traced``: each event carries a trace context of its own, as relay's ingress gives."""
    import msgspec

    from relay.providers import NORMALIZERS, Inbound

    made = []
    for i in range(n):
        body = {
            "event": "message_created",
            "id": i,
            "content": "Olá, tudo bem? Gostaria de saber o prazo de entrega do pedido." * 2,
            "message_type": "incoming",
            "account": {"id": 1, "name": "Loja"},
            "conversation": {"id": i % keys, "status": "open"},
            "sender": {"id": i % keys, "name": "Maria", "phone_number": "+5544999990001"},
        }
        inbound = Inbound(source="bench", body=json.dumps(body).encode(), received_at="-")
        for event in NORMALIZERS["chatwoot"](inbound):
            if traced:
                parent = f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01"
                event = msgspec.structs.replace(event, traceparent=parent)
            made.append(event)
    return made


Rate = tuple[float, float]
"""(deliveries/s, CPU µs of this process a delivery)."""
RelayRate = tuple[float, float, float, float]
"""(deliveries/s, CPU µs a delivery, seconds from start to the first delivery, deliveries/s
from the first delivery to the last: the rate once the consumer group has joined)."""


async def bare(url: str, bodies: list[bytes], concurrency: int) -> Rate:
    connector = aiohttp.TCPConnector(limit=concurrency)
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            async with session.post(
                url, data=body, headers={"Content-Type": "application/cloudevents+json"}
            ) as response:
                await response.read()

    async with aiohttp.ClientSession(connector=connector) as session:
        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        return len(bodies) / elapsed, cpu / len(bodies) * 1e6


async def relay_fanout(
    bootstrap: str,
    topic: str,
    url: str,
    events_: list[Any],
    concurrency: int,
    data_dir: str,
    traces: str | None = None,
) -> RelayRate:
    """``traces``: the OTLP/HTTP URL spans go to (tracing on); None traces nothing."""
    from relay.bus import Record
    from relay.bus.kafka import KafkaBus
    from relay.cloudevents import encode
    from relay.config import parse
    from relay.delivery.service import DeliveryService
    from relay.logs import configure

    configure("warning", "json")  # as `relay serve` runs: no per-delivery log lines

    config = parse(
        f"""
data_dir: {data_dir}
kafka: {{bootstrap_servers: "{bootstrap}", idempotence: false,
        session_timeout_ms: 1000, heartbeat_interval_ms: 300}}
topics: {{events: {topic}, deadletter: {topic}.dead}}
subscribers:
  - {{name: bench, url: "{url}", secret: {SECRET}, start_from: earliest,
     max_in_flight: {concurrency}}}
""",
        env={},
    )
    assert config.kafka is not None
    bus = KafkaBus(config.kafka)
    await bus.start()
    records = [Record(topic=topic, value=encode(e), key=e.partitionkey.encode()) for e in events_]
    for start in range(0, len(records), 1000):
        await bus.publish(records[start : start + 1000])
    tracing = None
    if traces is not None:
        from relay.telemetry.otel import Tracing

        tracing = Tracing.exporting(traces, service_name="relay-bench")
    service = DeliveryService(config, bus, tracing=tracing)
    started, cpu = time.perf_counter(), time.process_time()
    first: float | None = None
    at_first = 0
    await service.start()
    while True:
        worker = service.workers.get("bench")
        delivered = worker.stats.delivered if worker is not None else 0
        if first is None and delivered:
            first, at_first = time.perf_counter() - started, delivered
        if delivered >= len(events_):
            break
        await asyncio.sleep(0.02)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    first = first or 0.0
    steady = (len(events_) - at_first) / max(elapsed - first, 1e-9)
    await service.stop()
    await bus.close()
    if tracing is not None:
        await tracing.close(within=10)
    # the first rate counts the consumer group's join (first); the CPU is all of it
    return len(events_) / elapsed, cpu / len(events_) * 1e6, first, steady


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.fanout")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--keys", type=int, default=2_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--subscriber", type=int, help=argparse.SUPPRESS)
    parser.add_argument(
        "--subscriber-kind",
        choices=("lean", "aiohttp"),
        default="lean",
        help="the subscriber process: a raw asyncio server with httptools (default: ~35 CPU "
        "µs a request), or an aiohttp one (~150 µs: the ceiling near 5,000/s on two cores); "
        "the bare client and relay post to the same one",
    )
    parser.add_argument("--data-dir", default=None, help="delivery state (default: a temp dir)")
    parser.add_argument("--traced", action="store_true", help="trace every delivery attempt")
    parser.add_argument(
        "--relay-only", action="store_true", help="skip the bare client (to profile relay)"
    )
    args = parser.parse_args(argv)
    if args.subscriber:
        if args.subscriber_kind == "lean":
            lean_subscriber_main(args.subscriber)
        else:
            subscriber_main(args.subscriber)
        return 0

    from bench.load import cpu_seconds

    if args.data_dir is None:
        args.data_dir = tempfile.mkdtemp(prefix="relay-fanout-")
    port = free_port()
    command = [sys.executable, "-m", "bench.fanout", "--subscriber", str(port)]
    sub = subprocess.Popen(
        [*command, "--subscriber-kind", args.subscriber_kind], env={**os.environ}
    )
    served: dict[str, float] = {}
    """Per phase: the subscriber's CPU µs a request (is it the ceiling?)."""

    broker: dict[str, float] = {}
    """Per phase: the broker's CPU µs a delivery (Tansu shares the cores)."""
    broker_pid = 0

    def measured(phase: str, run: Any) -> Any:
        before, broker_before = cpu_seconds(sub.pid), cpu_seconds(broker_pid)
        with asyncio.Runner(loop_factory=new_event_loop) as runner:  # uvloop for both
            result = runner.run(run)
        served[phase] = (cpu_seconds(sub.pid) - before) / args.events * 1e6
        broker[phase] = (cpu_seconds(broker_pid) - broker_before) / args.events * 1e6
        return result

    try:
        wait_for_port(port)
        url = f"http://127.0.0.1:{port}/hook"
        made = events(args.events, args.keys, args.traced)
        traces = f"http://127.0.0.1:{port}/v1/traces" if args.traced else None
        from relay.cloudevents import encode

        bodies = [encode(e) for e in made]
        with tansu() as (bootstrap, tansu_process):
            broker_pid = tansu_process.pid
            topic = f"fanout.{int(time.time())}"
            create_topics(bootstrap, [topic], args.partitions)
            # bare, relay, bare: the machine is shared, so the bare client is measured on
            # both sides of relay's run and relay is compared with the mean of the two
            if not args.relay_only:
                bare_before = measured("bare", bare(url, bodies, args.concurrency))
            relay_rate, relay_cpu, joined, steady = measured(
                "relay",
                relay_fanout(bootstrap, topic, url, made, args.concurrency, args.data_dir, traces),
            )
            if not args.relay_only:
                bare_after = measured("bare after", bare(url, bodies, args.concurrency))
    finally:
        sub.terminate()
        sub.wait()
    load = " · ".join(f"{n:.1f}" for n in os.getloadavg())
    if args.relay_only:
        print(
            f"relay: {steady:,.0f} deliveries/s after the join ({relay_rate:,.0f} counting "
            f"it), {relay_cpu:.0f} CPU µs a delivery, first delivery after {joined:.2f} s; "
            f"the {args.subscriber_kind} subscriber {served['relay']:.0f} CPU µs a request, "
            f"the broker {broker['relay']:.0f} CPU µs a delivery (load {load})"
        )
        return 0
    bare_rate = (bare_before[0] + bare_after[0]) / 2
    bare_cpu = (bare_before[1] + bare_after[1]) / 2
    bare_served = (served["bare"] + served["bare after"]) / 2
    # the first and fourth rows keep the shape bench/run.py reads
    print(
        f"| fan-out ({args.events} events, {args.keys} keys, max_in_flight "
        f"{args.concurrency}, {args.subscriber_kind} subscriber"
        f"{', traced' if args.traced else ''}, load {load}) | deliveries/s "
        f"| CPU µs a delivery | subscriber CPU µs a request |\n|---|---:|---:|---:|\n"
        f"| bare aiohttp client | {bare_rate:,.0f} | {bare_cpu:.0f} | {bare_served:.0f} |\n"
        f"| bare, before · after relay | {bare_before[0]:,.0f} · {bare_after[0]:,.0f} "
        f"| {bare_before[1]:.0f} · {bare_after[1]:.0f} "
        f"| {served['bare']:.0f} · {served['bare after']:.0f} |\n"
        f"| relay delivery, counting the group's join ({joined:.2f} s) | {relay_rate:,.0f} "
        f"| {relay_cpu:.0f} | {served['relay']:.0f} |\n"
        f"| relay delivery (Kafka → signed POST) | {steady:,.0f} | {relay_cpu:.0f} "
        f"| {served['relay']:.0f} |\n"
        f"| relay / bare | {steady / bare_rate:.0%} | {bare_cpu / relay_cpu:.0%} | |\n\n"
        f"relay's rate is from its first delivery to its last; its consumer group took "
        f"{joined:.2f} s to join (the row above counts it). CPU µs: this process's user + "
        f"system time a delivery (relay's includes the join), and the subscriber process's "
        f"a request. The broker (Tansu) spent {broker['relay']:.0f} CPU µs a delivery during "
        f"relay's run (fetches, commits, the attempt log's writes)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
