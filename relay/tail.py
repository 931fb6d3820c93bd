"""``relay tail``: print a topic's records from the embedded log or from Kafka.

By default one value per line, as stored (canonical events are JSON lines). With
``headers`` each line is a JSON object with the record's topic, partition, offset, time,
key, headers and value; ``deadletter`` reads the dead-letter topic that way and puts the
why up front: ``origin`` (``ingest``: the body could not be normalized; ``delivery``: a
subscriber's retries ran out or it refused), ``reason`` and ``error``.

Without ``follow`` the read stops at the end seen when it started; with it, it waits for
new records until interrupted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from relay import deadletters
from relay.bus import Item
from relay.config import Config, Kafka

POLL_SECONDS = 0.5
_BATCH = 500


class TailError(Exception):
    """A request ``tail`` cannot serve, phrased for the operator."""


class Options(msgspec.Struct, frozen=True, kw_only=True):
    topic: str | None = None
    after: int | None = None
    """Start after this offset (on Kafka: in every partition read)."""
    last: int | None = None
    """Start this many records before the end (on Kafka: of every partition read)."""
    partition: int | None = None
    limit: int | None = None
    follow: bool = False
    headers: bool = False
    deadletter: bool = False
    subscriber: str | None = None
    """With ``deadletter``: only what this subscriber's deliveries dead-lettered."""


_json = msgspec.json.Encoder()


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def _value(raw: bytes) -> Any:
    """The value as JSON when it is JSON (events are), its text otherwise (raw bodies)."""
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return _text(raw)


def _time(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds")[:-6] + "Z"


def render(entry: Item, options: Options) -> bytes:
    """One output line, without its newline."""
    if not (options.headers or options.deadletter):
        return entry.value.rstrip(b"\n")
    headers = {name: _text(value) for name, value in entry.headers}
    line: dict[str, Any] = {
        "topic": entry.topic,
        "partition": entry.partition,
        "offset": entry.offset,
        "timestamp": _time(entry.timestamp_ms),
        "key": None if entry.key is None else _text(entry.key),
    }
    if options.deadletter:
        line["origin"] = deadletters.origin(headers)
        line["reason"] = headers.get(deadletters.REASON)
        line["error"] = headers.get(deadletters.ERROR)
        if deadletters.SUBSCRIBER in headers:
            line["subscriber"] = headers[deadletters.SUBSCRIBER]
    line["headers"] = headers
    line["value"] = _value(entry.value)
    return _json.encode(line)


def _wanted(options: Options) -> Callable[[Item], bool]:
    if options.subscriber is None:
        return lambda entry: True
    name = options.subscriber.encode()
    return lambda entry: deadletters.made_for(entry.headers, name)


def topic_of(config: Config, options: Options) -> str:
    if options.deadletter:
        if options.topic not in (None, config.topics.deadletter):
            raise TailError("--deadletter reads the dead-letter topic; leave out --topic")
        return config.topics.deadletter
    return options.topic or config.topics.events


# --- the embedded log -------------------------------------------------------------------


def embedded_entries(path: Path, topic: str, options: Options) -> Iterator[Item]:
    from relay.bus.embedded import offset_before_last, read

    if options.partition not in (None, 0):
        raise TailError("the embedded log has one partition per topic: 0")
    after = options.after if options.after is not None else 0
    if options.last is not None:
        after = offset_before_last(path, topic, options.last)
    while True:
        records = read(path, topic=topic, after=after, limit=_BATCH)
        for record in records:
            after = record.offset
            yield record
        if len(records) < _BATCH:
            if not options.follow:
                return
            time.sleep(POLL_SECONDS)


# --- Kafka --------------------------------------------------------------------------------


async def kafka_entries(kafka: Kafka, topic: str, options: Options) -> AsyncGenerator[Item, None]:
    from aiokafka import TopicPartition
    from aiokafka.errors import KafkaError

    from relay.bus.kafka.consumer import kafka_item, outside_group
    from relay.bus.kafka.security import refusal

    consumer = outside_group(
        kafka, client_id=f"{kafka.client_id}-tail", request_timeout_ms=kafka.request_timeout_ms
    )
    try:
        await consumer.start()
    except KafkaError as exc:
        await consumer.stop()
        reason = await refusal(kafka)  # a certificate or login the broker refuses, named
        raise TailError(reason or f"cannot connect to Kafka at {kafka.servers}: {exc}") from exc
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer.topics()  # the first metadata answer may predate the topic
            partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise TailError(f"topic {topic!r} does not exist on Kafka at {kafka.servers}")
        if options.partition is not None:
            if options.partition not in partitions:
                raise TailError(f"topic {topic!r} has partitions {sorted(partitions)}")
            partitions = {options.partition}
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        beginning = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
        for tp in tps:
            start = beginning[tp] if options.after is None else options.after + 1
            if options.last is not None:
                start = end[tp] - options.last
            consumer.seek(tp, min(max(start, beginning[tp]), end[tp]))
        last_round = False
        while True:
            remaining = tps
            if not options.follow:
                remaining = [tp for tp in tps if await consumer.position(tp) < end[tp]]
                if not remaining:
                    if last_round:
                        return
                    # One more fetch: some brokers (Tansu) report a partition's end as its
                    # last batch's first offset + 1, so the rest of that batch is still there.
                    last_round, remaining = True, tps
            batches = await consumer.getmany(*remaining, timeout_ms=int(POLL_SECONDS * 1000))
            for tp in sorted(batches, key=lambda tp: tp.partition):
                stream = (tp.topic, tp.partition, 0)
                for message in batches[tp]:
                    item = kafka_item(message, stream)
                    if item.value is None:  # a tombstone prints as an empty value, not a crash
                        item = msgspec.structs.replace(item, value=b"")
                    yield item
    finally:
        await consumer.stop()


# --- running it ---------------------------------------------------------------------------


def run(config: Config, options: Options, write: Callable[[bytes], None]) -> int:
    """Print the records ``options`` asks for through ``write``; returns how many."""
    topic = topic_of(config, options)
    wanted = _wanted(options)
    count = 0
    if config.kafka is None:
        from relay.bus.embedded import LOG_FILE

        path = config.data_path / LOG_FILE
        if not path.exists():
            raise TailError(f"{path}: no embedded log yet (has relay served with this config?)")
        for entry in embedded_entries(path, topic, options):
            if wanted(entry):
                write(render(entry, options) + b"\n")
                count += 1
                if options.limit is not None and count >= options.limit:
                    break
        return count

    async def from_kafka() -> int:
        assert config.kafka is not None
        printed = 0
        entries = kafka_entries(config.kafka, topic, options)
        try:
            async for entry in entries:
                if wanted(entry):
                    write(render(entry, options) + b"\n")
                    printed += 1
                    if options.limit is not None and printed >= options.limit:
                        break
        finally:
            await entries.aclose()
        return printed

    return asyncio.run(from_kafka())
