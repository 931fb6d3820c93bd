"""``relay replay``: redeliver from a time or an offset, and re-send dead letters after a fix."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from relay.bus import FromOffset, Since
from relay.bus.embedded import EmbeddedLog
from relay.bus.kafka import KafkaBus
from relay.config import Config
from relay.delivery.replay import ReplayError, parse_since, replay
from tests.broker import Broker
from tests.factories import chat_event, records
from tests.subscriber import Subscriber
from tests.support import make_config, running, unique

pytestmark = pytest.mark.integration


def kafka(broker: Broker, url: str, events: str, dead: str, data_dir: Path) -> Config:
    return make_config(
        f"""
data_dir: {data_dir}
kafka: {{bootstrap_servers: "{broker.bootstrap}", idempotence: false,
        session_timeout_ms: 1000, heartbeat_interval_ms: 300}}
topics: {{events: {events}, deadletter: {dead}}}
subscribers:
  - {{name: crm, url: "{url}", start_from: earliest, retry: {{max_attempts: 2, initial: 10ms}}}}
"""
    )


async def test_replay_from_offset_and_since(
    broker: Broker, kafka_bus: KafkaBus, tmp_path: Path
) -> None:
    subscriber = await Subscriber().start()
    try:
        config = kafka(broker, subscriber.url, unique("rp.events"), unique("rp.dead"), tmp_path)
        before = int(time.time() * 1000) - 1000
        events = [chat_event(1, 1), chat_event(2, 2), chat_event(1, 3)]
        # One publish per record: Tansu reports a partition's end offset as the last batch's
        # base offset + 1, so multi-record batches would hide records from a bounded range.
        for event in events:
            await kafka_bus.publish(records(config.topics.events, [event]))

        stats = await replay(config, "crm", FromOffset(0))
        assert stats.delivered == 3
        stats = await replay(config, "crm", Since(before))
        assert stats.delivered == 3
        stats = await replay(config, "crm", Since(int(time.time() * 1000) + 60_000))
        assert stats.delivered == 0
        ids = [r.headers["webhook-id"] for r in subscriber.delivered()]
        assert sorted(ids) == sorted([e.id for e in events] * 2)
        stats = await replay(config, "crm", FromOffset(1))
        assert 0 < stats.delivered < 3  # each partition's first record is skipped
        stats = await replay(config, "crm", FromOffset(10**9))
        assert stats.delivered == 0  # past the end: nothing
    finally:
        await subscriber.close()


async def test_replay_deadletters_after_a_fix(
    broker: Broker, kafka_bus: KafkaBus, tmp_path: Path
) -> None:
    broken = True
    subscriber = await Subscriber(script=lambda s, b, h: 422 if broken else 200).start()
    try:
        config = kafka(broker, subscriber.url, unique("rp.events"), unique("rp.dead"), tmp_path)
        event = chat_event(5, 50)
        await kafka_bus.publish(records(config.topics.events, [event]))
        service = await running(config, kafka_bus)
        try:
            await subscriber.wait_for(lambda s: len(s.received) == 1)
        finally:
            await service.stop()
        assert subscriber.delivered() == []

        broken = False  # the subscriber was fixed
        later = await replay(
            config, "crm", Since(int(time.time() * 1000) + 60_000), deadletter=True
        )
        assert later.delivered == 0  # --since limits which dead letters are re-sent
        stats = await replay(config, "crm", deadletter=True)
        assert (stats.delivered, stats.deadlettered) == (1, 0)
        [got] = subscriber.delivered()
        assert got.headers["webhook-id"] == event.id
    finally:
        await subscriber.close()


async def test_replay_on_the_embedded_log(tmp_path: Path) -> None:
    subscriber = await Subscriber().start()
    try:
        config = make_config(
            f"""
data_dir: {tmp_path}
subscribers: [{{name: local, url: "{subscriber.url}"}}]
"""
        )
        bus = EmbeddedLog(config.data_path)
        await bus.start()
        events = [chat_event(1, 1), chat_event(1, 2)]
        try:
            await bus.publish(records("chat.events", events))
        finally:
            await bus.close()
        stats = await replay(config, "local", FromOffset(2))
        assert stats.delivered == 1
        assert [r.headers["webhook-id"] for r in subscriber.delivered()] == [events[1].id]
    finally:
        await subscriber.close()


async def test_replay_explains_mistakes(tmp_path: Path) -> None:
    config = make_config(f"data_dir: {tmp_path}")
    with pytest.raises(ReplayError, match="no subscriber named 'x'"):
        await replay(config, "x", FromOffset(0))
    with pytest.raises(ReplayError, match="--since"):
        parse_since("last tuesday")
    with pytest.raises(ReplayError, match="where to start"):
        await replay(
            make_config(f"data_dir: {tmp_path}\nsubscribers: [{{name: x, url: 'http://h'}}]"), "x"
        )
    assert parse_since("2024-05-02T12:00:00Z") == 1714651200000
