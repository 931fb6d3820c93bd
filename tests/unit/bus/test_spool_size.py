"""The spool refuses, before anything is sent or stored, a record Kafka would refuse forever."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.bus import Bus, BusError, Record, RecordTooLarge
from relay.bus.spool import SpooledBus


def unused_kafka() -> Bus:
    raise AssertionError("a refused record must not reach Kafka")


def spooled(data_dir: Path) -> SpooledBus:
    return SpooledBus(
        unused_kafka, data_dir, spool_after=1.0, max_bytes=10_000, max_record_bytes=100
    )


@pytest.mark.parametrize(
    "record",
    [
        Record(topic="t", value=b"v" * 101),
        Record(topic="t", value=b"v" * 60, key=b"k" * 41),
        Record(topic="t", value=b"v" * 60, key=b"k", headers=(("relay-error", b"e" * 29),)),
    ],
    ids=["value", "key", "headers"],
)
async def test_key_and_headers_count_toward_the_limit(tmp_path: Path, record: Record) -> None:
    bus = spooled(tmp_path)
    with pytest.raises(RecordTooLarge):
        await bus.publish([Record(topic="t", value=b"small"), record])


async def test_a_record_at_the_limit_is_not_refused_as_too_large(tmp_path: Path) -> None:
    bus = spooled(tmp_path)
    at_limit = Record(topic="t", value=b"v" * 60, key=b"k", headers=(("relay-error", b"e" * 28),))
    with pytest.raises(BusError) as raised:  # not connected: it would go to the spool
        await bus.publish([at_limit])
    assert not isinstance(raised.value, RecordTooLarge)
