"""relay.bus's three openers pick the transport from the config and pass every setting on:
on the embedded log (a real SQLite file under tmp_path) by what the reads return, on Kafka
(never started here) by what the objects were built with."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from relay.bus import (
    BusRole,
    FromOffset,
    Record,
    Since,
    Subscription,
    group_id,
    open_bus,
    open_range,
    subscribe,
)
from relay.bus.embedded import LOG_FILE, EmbeddedLog, EmbeddedSubscription
from relay.bus.kafka import KafkaBus
from relay.bus.kafka.consumer import KafkaRange, KafkaSubscription
from relay.bus.spool import SpooledBus
from relay.config import Config
from tests.support import make_config

SUBSCRIBERS = (
    "subscribers:\n"
    "  - {name: crm, url: 'http://127.0.0.1:9/', start_from: earliest}\n"
    "  - {name: late, url: 'http://127.0.0.1:9/', topics: [other]}\n"
)


def embedded(tmp_path: Path, retention: str = "1h") -> Config:
    return make_config(f"data_dir: {tmp_path}\nretention: {retention}\n{SUBSCRIBERS}")


def on_kafka(tmp_path: Path) -> Config:
    return make_config(
        f"data_dir: {tmp_path}\nkafka: {{bootstrap_servers: '127.0.0.1:9', spool_after: 7s, "
        f"spool_max_bytes: 12345, max_record_bytes: 6789}}\n{SUBSCRIBERS}"
    )


async def values(reading: Subscription) -> list[bytes] | None:
    await reading.start()
    try:
        items = await reading.fetch(100, 0)
        return None if items is None else [item.value for item in items]
    finally:
        await reading.close()


def test_without_kafka_the_bus_is_the_embedded_log_with_the_retention(tmp_path: Path) -> None:
    bus = open_bus(embedded(tmp_path))
    assert isinstance(bus, EmbeddedLog)
    assert (bus.path, bus.retention_ms) == (tmp_path / LOG_FILE, 3_600_000)
    forever = open_bus(embedded(tmp_path, retention="0"))
    assert isinstance(forever, EmbeddedLog) and forever.retention_ms is None


async def test_on_the_embedded_log_subscribe_and_open_range_read_what_open_bus_wrote(
    tmp_path: Path,
) -> None:
    config = embedded(tmp_path)
    crm, late = config.subscribers
    assert (group_id(crm), group_id(late)) == ("relay.sub.crm", "relay.sub.late")
    bus = open_bus(config)
    await bus.start()
    try:
        before = int(time.time() * 1000)
        events = config.topics.events
        await bus.publish([Record(events, b"e1"), Record("other", b"o2"), Record(events, b"e3")])
        # earliest, the events topic by default, under its group's name
        reading = subscribe(config, crm)
        assert isinstance(reading, EmbeddedSubscription) and reading.consumer == "relay.sub.crm"
        assert await values(reading) == [b"e1", b"e3"]
        # latest, from its first start: what came after the anchor, its own topics only
        assert await values(subscribe(config, late, anchor_ms=before)) == [b"o2"]
        # a bounded read commits nothing and reads under the name it was given
        ranged = open_range(config, [events], "replay.one", FromOffset(3))
        assert isinstance(ranged, EmbeddedSubscription) and ranged.consumer == "replay.one"
        assert await values(ranged) == [b"e3"]
        assert await values(open_range(config, [events], "r", FromOffset(0))) == [b"e1", b"e3"]
        assert await values(open_range(config, [events, "other"], "r", Since(before))) == [
            b"e1",
            b"o2",
            b"e3",
        ]
        # nothing since then: the range is exhausted at once
        assert await values(open_range(config, ["other"], "r", Since(before + 60_000))) is None
    finally:
        await bus.close()


@pytest.mark.parametrize(
    ("role", "spool"),
    [
        (None, "spool.sqlite3"),
        ("all", "spool.sqlite3"),
        ("ingress", "spool.sqlite3"),
        ("delivery", "spool-delivery.sqlite3"),
        ("replay", "spool-replay.sqlite3"),
    ],
)
async def test_with_kafka_the_bus_is_kafka_behind_a_spool_of_the_role(
    tmp_path: Path, role: BusRole | None, spool: str
) -> None:
    config = on_kafka(tmp_path)
    assert config.kafka is not None
    bus = open_bus(config) if role is None else open_bus(config, role)
    assert isinstance(bus, SpooledBus)
    assert (bus.spool_after, bus.max_bytes, bus.max_record_bytes) == (7.0, 12345, 6789)
    kafka = bus._make_kafka()
    assert isinstance(kafka, KafkaBus)
    assert (kafka.config, kafka.delivery_timeout) == (config.kafka, 7.0)
    # the claim is taken at start: each role spools to a file of its own under data_dir
    assert bus._claim_base is not None
    assert bus._claim_base + ".sqlite3" == spool


async def test_with_kafka_subscribe_and_open_range_read_from_kafka(tmp_path: Path) -> None:
    config = on_kafka(tmp_path)
    crm, late = config.subscribers
    reading = subscribe(config, crm)
    assert isinstance(reading, KafkaSubscription)
    assert (reading._group_id, reading._topics, reading._start_from, reading._anchor_ms) == (
        "relay.sub.crm",
        [config.topics.events],
        "earliest",
        None,
    )
    anchored = subscribe(config, late, anchor_ms=42)
    assert isinstance(anchored, KafkaSubscription)
    assert (anchored._topics, anchored._start_from, anchored._anchor_ms) == (
        ["other"],
        "latest",
        42,
    )
    ranged = open_range(config, ["a", "b"], "unused", FromOffset(6))
    assert isinstance(ranged, KafkaRange)
    assert (ranged._topics, ranged._start) == (["a", "b"], FromOffset(6))
