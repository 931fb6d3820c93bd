"""``relay tail`` on Kafka (the real broker): values, headers with partitions and offsets,
dead letters with their origin, a partition of its own, and follow."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from relay.bus.base import Record
from relay.bus.kafka import KafkaBus
from relay.cli import build_parser, tail_options
from relay.config import load
from relay.tail import TailError, run
from tests.broker import Broker
from tests.support import unique

pytestmark = pytest.mark.integration


def _config(tmp_path: Path, broker: Broker, events: str, dead: str) -> str:
    path = tmp_path / "relay.yaml"
    path.write_text(
        f"data_dir: {tmp_path / 'var'}\n"
        f'kafka: {{bootstrap_servers: "{broker.bootstrap}", idempotence: false}}\n'
        f"topics: {{events: {events}, deadletter: {dead}}}\n"
    )
    return str(path)


async def _tail(*args: str) -> list[str]:
    """``relay tail ARGS`` as the CLI parses it, run in a thread (it runs its own loop)."""
    parsed = build_parser().parse_args(["tail", *args])
    lines: list[bytes] = []
    await asyncio.wait_for(
        asyncio.to_thread(run, load(parsed.config), tail_options(parsed), lines.append), 30
    )
    return [line.decode().rstrip("\n") for line in lines]


async def test_tail_reads_kafka_with_headers(
    tmp_path: Path, broker: Broker, kafka_bus: KafkaBus
) -> None:
    events, dead = unique("tail.events"), unique("tail.dead")
    config = _config(tmp_path, broker, events, dead)
    # One publish, so several records share a batch (the broker's end offset then lags).
    await kafka_bus.publish(
        [Record(events, json.dumps({"n": n}).encode(), f"k{n}".encode()) for n in range(5)]
    )
    await kafka_bus.publish(
        [
            Record(dead, b"{nope", b"nexloo", (("relay-reason", b"malformed_json"),)),
            Record(
                dead,
                b'{"id":"e1"}',
                b"k1",
                (
                    ("relay-reason", b"delivery_exhausted"),
                    ("relay-subscriber", b"crm"),
                    ("relay-error", b"HTTP 500: nope"),
                ),
            ),
        ]
    )
    values = await _tail("-c", config)
    assert sorted(json.loads(v)["n"] for v in values) == [0, 1, 2, 3, 4]

    lines = [json.loads(line) for line in await _tail("-c", config, "--headers")]
    assert {line["key"] for line in lines} == {f"k{n}" for n in range(5)}
    assert all(line["topic"] == events and line["partition"] >= 0 for line in lines)
    first = min(lines, key=lambda line: line["offset"])
    # --partition and --after use what --headers printed
    after = await _tail(
        "-c",
        config,
        "--headers",
        "--partition",
        str(first["partition"]),
        "--after",
        str(first["offset"]),
    )
    same_partition = [line for line in lines if line["partition"] == first["partition"]]
    assert len(after) == len(same_partition) - 1

    dead_letters = [json.loads(line) for line in await _tail("-c", config, "--deadletter")]
    delivery, ingest = sorted(dead_letters, key=lambda line: str(line["origin"]))
    assert (ingest["origin"], ingest["reason"]) == ("ingest", "malformed_json")
    assert (delivery["origin"], delivery["subscriber"], delivery["error"]) == (
        "delivery",
        "crm",
        "HTTP 500: nope",
    )


async def test_tail_last_starts_near_the_end(
    tmp_path: Path, broker: Broker, kafka_bus: KafkaBus
) -> None:
    events = unique("tail.last")
    config = _config(tmp_path, broker, events, unique("tail.dead"))
    for n in range(4):  # one batch each: Tansu's end offset is exact then
        await kafka_bus.publish([Record(events, f'{{"n":{n}}}'.encode(), b"one-key")])
    assert await _tail("-c", config, "--last", "2") == ['{"n":2}', '{"n":3}']


async def test_tail_follows_kafka(tmp_path: Path, broker: Broker, kafka_bus: KafkaBus) -> None:
    events = unique("tail.follow")
    config = _config(tmp_path, broker, events, unique("tail.dead"))
    await kafka_bus.publish([Record(events, b'{"n":1}')])
    parsed = build_parser().parse_args(["tail", "-c", config, "--follow", "--limit", "2"])
    lines: list[bytes] = []
    loop, printed = asyncio.get_running_loop(), asyncio.Event()

    def write(line: bytes) -> None:  # in the tail's thread
        lines.append(line)
        loop.call_soon_threadsafe(printed.set)

    following = asyncio.create_task(
        asyncio.to_thread(run, load(config), tail_options(parsed), write)
    )
    await asyncio.wait_for(printed.wait(), 20)
    assert lines == [b'{"n":1}\n'] and not following.done()  # waiting for more
    await kafka_bus.publish([Record(events, b'{"n":2}')])
    await asyncio.wait_for(following, 20)
    assert lines == [b'{"n":1}\n', b'{"n":2}\n']


async def test_tail_names_a_missing_partition(tmp_path: Path, broker: Broker) -> None:
    config = _config(tmp_path, broker, unique("tail.none"), unique("tail.dead"))
    with pytest.raises(TailError, match=r"^topic .* (has partitions|does not exist)"):
        await _tail("-c", config, "--partition", "7")


async def test_a_record_without_a_value_prints_as_an_empty_value(
    tmp_path: Path, broker: Broker
) -> None:
    from aiokafka import AIOKafkaProducer

    events, dead = unique("tail.events"), unique("tail.dead")
    config = _config(tmp_path, broker, events, dead)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(events, value=b'{"n":1}', key=b"k")
        await producer.send_and_wait(events, value=None, key=b"k")  # a tombstone
    finally:
        await producer.stop()
    assert await _tail("--config", config) == ['{"n":1}', ""]
    [_, tombstone] = [json.loads(line) for line in await _tail("--config", config, "--headers")]
    assert (tombstone["key"], tombstone["value"]) == ("k", "")
