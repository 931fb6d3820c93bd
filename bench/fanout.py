"""Fan-out benchmark: deliveries/s from Kafka to a local HTTP subscriber.

Measures, against the same subscriber process:

- **bare**: an aiohttp client posting the same CloudEvent bodies as fast as it can with the
  same connection limit (the ceiling for an aiohttp client in one process);
- **relay**: relay's delivery worker reading the events from Kafka (Tansu), filtering,
  signing (Standard Webhooks), keeping per-key order, committing watermarks.

Both run on uvloop, with the same connection limit, against the same subscriber, in the
same run: the bare client before and after relay (the machine is shared; relay is compared
with their mean). Besides deliveries/s it reports the CPU time of this process per delivery,
which moves less than the rate when other processes compete for the cores.

Run: ``.venv/bin/python -m bench.fanout [--events 20000] [--concurrency 64] [--keys 2000]``
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

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_get("/count", count)
    web.run_app(
        app, host="127.0.0.1", port=port, print=None, access_log=None, loop=new_event_loop()
    )


# --- measurements ------------------------------------------------------------------------


def events(n: int, keys: int) -> list[Any]:
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
        made.extend(NORMALIZERS["chatwoot"](inbound))
    return made


Rate = tuple[float, float]
"""(deliveries/s, CPU µs of this process a delivery)."""
RelayRate = tuple[float, float, float]
"""(deliveries/s, CPU µs a delivery, seconds from start to the first delivery)."""


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
    bootstrap: str, topic: str, url: str, events_: list[Any], concurrency: int, data_dir: str
) -> RelayRate:
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
    service = DeliveryService(config, bus)
    started, cpu = time.perf_counter(), time.process_time()
    first: float | None = None
    await service.start()
    while True:
        worker = service.workers.get("bench")
        delivered = worker.stats.delivered if worker is not None else 0
        if first is None and delivered:
            first = time.perf_counter() - started
        if delivered >= len(events_):
            break
        await asyncio.sleep(0.02)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    await service.stop()
    await bus.close()
    # the rate counts the consumer group's join (first); the CPU is all of it
    return len(events_) / elapsed, cpu / len(events_) * 1e6, first or 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.fanout")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--keys", type=int, default=2_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--subscriber", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", default=None, help="delivery state (default: a temp dir)")
    parser.add_argument(
        "--relay-only", action="store_true", help="skip the bare client (to profile relay)"
    )
    args = parser.parse_args(argv)
    if args.subscriber:
        subscriber_main(args.subscriber)
        return 0

    if args.data_dir is None:
        args.data_dir = tempfile.mkdtemp(prefix="relay-fanout-")
    port = free_port()
    sub = subprocess.Popen(
        [sys.executable, "-m", "bench.fanout", "--subscriber", str(port)],
        env={**os.environ},
    )
    try:
        wait_for_port(port)
        url = f"http://127.0.0.1:{port}/hook"
        made = events(args.events, args.keys)
        from relay.cloudevents import encode

        bodies = [encode(e) for e in made]
        with tansu() as (bootstrap, _):
            topic = f"fanout.{int(time.time())}"
            create_topics(bootstrap, [topic], args.partitions)
            # bare, relay, bare: the machine is shared, so the bare client is measured on
            # both sides of relay's run and relay is compared with the mean of the two
            if not args.relay_only:
                with asyncio.Runner(loop_factory=new_event_loop) as runner:
                    bare_before = runner.run(bare(url, bodies, args.concurrency))
            with asyncio.Runner(loop_factory=new_event_loop) as runner:  # uvloop, as the bare
                relay_rate, relay_cpu, joined = runner.run(
                    relay_fanout(bootstrap, topic, url, made, args.concurrency, args.data_dir)
                )
            if not args.relay_only:
                with asyncio.Runner(loop_factory=new_event_loop) as runner:
                    bare_after = runner.run(bare(url, bodies, args.concurrency))
    finally:
        sub.terminate()
        sub.wait()
    if args.relay_only:
        print(
            f"relay: {relay_rate:,.0f} deliveries/s, {relay_cpu:.0f} CPU µs a delivery, "
            f"first delivery after {joined:.2f} s (load {os.getloadavg()[0]:.1f})"
        )
        return 0
    bare_rate = (bare_before[0] + bare_after[0]) / 2
    bare_cpu = (bare_before[1] + bare_after[1]) / 2
    # the first and third rows keep the shape bench/run.py reads
    print(
        f"| fan-out ({args.events} events, {args.keys} keys, max_in_flight "
        f"{args.concurrency}, load {os.getloadavg()[0]:.1f}) | deliveries/s "
        f"| CPU µs a delivery |\n|---|---:|---:|\n"
        f"| bare aiohttp client | {bare_rate:,.0f} | {bare_cpu:.0f} |\n"
        f"| bare, before · after relay | {bare_before[0]:,.0f} · {bare_after[0]:,.0f} "
        f"| {bare_before[1]:.0f} · {bare_after[1]:.0f} |\n"
        f"| relay delivery (Kafka → signed POST) | {relay_rate:,.0f} | {relay_cpu:.0f} |\n"
        f"| relay / bare | {relay_rate / bare_rate:.0%} | {bare_cpu / relay_cpu:.0%} |\n\n"
        f"relay's rate counts the {joined:.2f} s its consumer group took to join "
        f"(start to first delivery)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
