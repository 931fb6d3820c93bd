"""The Kafka readers against the real broker (Tansu), in process: a subscriber's group
(where a group that never committed starts, that the start is committed at once, what a
commit keeps, the backlog) and replay's bounded range (from an offset, from a time, up to
the end seen at start)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from structlog.testing import capture_logs

from relay.bus import FromOffset, Item, Record, Since, Subscription
from relay.bus.kafka import KafkaBus
from relay.bus.kafka.consumer import KafkaRange, KafkaSubscription
from relay.config import Kafka, parse
from tests.broker import Broker
from tests.support import unique

pytestmark = pytest.mark.integration


def _kafka(broker: Broker) -> Kafka:
    config = parse(
        f'kafka: {{bootstrap_servers: "{broker.bootstrap}", idempotence: false}}', env={}
    )
    assert config.kafka is not None
    return config.kafka


async def _topic(broker: Broker) -> str:
    topic = unique("consumer")
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, replication_factor=1)])
    finally:
        await admin.close()
    return topic


async def _publish(bus: KafkaBus, topic: str, first: int, count: int) -> None:
    """Records ``first`` … of one partition: value ``v<n>``, key ``k<n>``, header ``n``.

    One batch each: Tansu answers a partition's end offset as its last batch's first
    offset plus one (Kafka: the last record's plus one), so a batch of several would end
    the partition early for the readers under test."""
    for n in range(first, first + count):
        await bus.publish([Record(topic, b"v%d" % n, b"k%d" % n, (("n", b"%d" % n),))])


def _offsets(items: list[Item]) -> list[int]:
    return [item.offset for item in items]


async def _committed(broker: Broker, group: str, topic: str) -> int | None:
    """The group's committed offset of partition 0, asked without joining the group."""
    reader = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group)
    await reader.start()
    try:
        return await reader.committed(TopicPartition(topic, 0))  # type: ignore[no-any-return]
    finally:
        await reader.stop()


@asynccontextmanager
async def _reading(subscription: Subscription) -> AsyncIterator[Subscription]:
    await subscription.start()
    try:
        yield subscription
    finally:
        await subscription.close()


async def _read(subscription: Subscription, count: int, max_records: int = 100) -> list[Item]:
    items: list[Item] = []
    async with asyncio.timeout(30):
        while len(items) < count:
            batch = await subscription.fetch(max_records, 0.2)
            assert batch is not None
            items += batch
    return items


async def _placed(subscription: Subscription, broker: Broker, group: str, topic: str) -> int:
    """Fetch (nothing arrives) until the group's start is committed; that offset."""
    async with asyncio.timeout(30):
        while (offset := await _committed(broker, group, topic)) is None:
            assert await subscription.fetch(100, 0.2) == []
    return offset


async def test_a_new_group_starts_where_told_commits_that_at_once_and_keeps_its_commits(
    broker: Broker,
) -> None:
    config = _kafka(broker)
    early, late, anchored, ahead = [await _topic(broker) for _ in range(4)]
    bus = KafkaBus(config)
    await bus.start()
    try:
        before = time.time_ns() // 1_000_000
        for topic in (early, late, anchored, ahead):
            await _publish(bus, topic, 0, 3)
        await asyncio.sleep(0.01)
        anchor = time.time_ns() // 1_000_000
        await _publish(bus, anchored, 3, 1)  # at or after the anchor
        groups = [unique("relay.sub.test") for _ in range(4)]
        hour_later = anchor + 3_600_000
        subscriptions = [
            KafkaSubscription(config, groups[0], [early], "earliest"),
            KafkaSubscription(config, groups[1], [late], "latest"),
            KafkaSubscription(config, groups[2], [anchored], "latest", anchor_ms=anchor),
            KafkaSubscription(config, groups[3], [ahead], "latest", anchor_ms=hour_later),
        ]
        await asyncio.gather(*(sub.start() for sub in subscriptions))
        with capture_logs() as logged:
            try:
                first, last, since, later = subscriptions
                assert await first.backlog() == 0  # nothing fetched yet: nothing known
                # earliest: the beginning, committed as soon as it is placed
                [item] = await _read(first, 1, max_records=1)
                assert await _committed(broker, groups[0], early) == 0
                assert item == Item(
                    stream=(early, 0, 1),  # first assignment of the partition
                    offset=0,
                    topic=early,
                    key=b"k0",
                    value=b"v0",
                    headers=(("n", b"0"),),
                    timestamp_ms=item.timestamp_ms,
                )
                assert before <= item.timestamp_ms <= time.time_ns() // 1_000_000
                assert await first.backlog() == 2
                items = await _read(first, 2)
                assert _offsets(items) == [1, 2]
                assert [i.value for i in items] == [b"v1", b"v2"]
                assert await first.backlog() == 0
                # a commit keeps only what is still this consumer's, read under this assignment
                await first.commit({(early, 0, 2): 1, (late, 0, 1): 1})
                assert await _committed(broker, groups[0], early) == 0
                await first.commit({(early, 0, 1): 2})  # the offset given, not the position
                assert await _committed(broker, groups[0], early) == 2
                await first.commit({(early, 0, 1): 3})
                assert await _committed(broker, groups[0], early) == 3

                # latest: the end when placed; what is published after it is read
                assert await _placed(last, broker, groups[1], late) == 3
                await _publish(bus, late, 3, 1)
                [item] = await _read(last, 1)
                assert (item.offset, item.value, item.stream) == (3, b"v3", (late, 0, 1))

                # latest from an anchor: the first record at or after it
                [item] = await _read(since, 1)
                assert (item.offset, item.value) == (3, b"v3")
                assert await _committed(broker, groups[2], anchored) == 3

                # an anchor later than every record: the end
                assert await _placed(later, broker, groups[3], ahead) == 3
                await _publish(bus, ahead, 3, 1)
                [item] = await _read(later, 1)
                assert item.offset == 3
            finally:
                await asyncio.gather(*(sub.close() for sub in subscriptions))
        # each start is said once: where, for which group, and why
        # what was read but not committed stays uncommitted: nothing commits on its own
        assert await _committed(broker, groups[1], late) == 3
        said = [line for line in logged if line["event"] == "subscription_anchored"]
        assert sorted(
            (line["group"], line["topic"], line["partition"], line["offset"], line["start_from"])
            for line in said
        ) == sorted(
            [
                (groups[0], early, 0, 0, "earliest"),
                (groups[1], late, 0, 3, "latest"),
                (groups[2], anchored, 0, 3, "latest"),
                (groups[3], ahead, 0, 3, "latest"),
            ]
        )
    finally:
        await bus.close()


async def test_a_range_reads_from_its_start_to_the_end_seen_at_start(broker: Broker) -> None:
    config = _kafka(broker)
    topic, other, empty = [await _topic(broker) for _ in range(3)]
    bus = KafkaBus(config)
    await bus.start()
    try:
        await _publish(bus, topic, 0, 3)
        await asyncio.sleep(0.01)
        middle = time.time_ns() // 1_000_000
        await _publish(bus, topic, 3, 2)
        await _publish(bus, other, 0, 1)

        async def read(start: FromOffset | Since, *topics: str) -> list[Item]:
            items: list[Item] = []
            async with _reading(KafkaRange(config, list(topics), start)) as reading:
                await _publish(bus, topic, 100, 1)  # after the start: past the end, not read
                async with asyncio.timeout(30):
                    while (batch := await reading.fetch(2, 0.2)) is not None:
                        assert len(batch) <= 2
                        items += batch
                assert await reading.backlog() == 0
                await reading.commit({(topic, 0, 0): 1})  # commits nothing, raises nothing
            return items

        # each read below publishes one more record as soon as it has started
        whole = sorted(await read(FromOffset(0), topic, other), key=lambda i: (i.topic, i.offset))
        expected = sorted([(topic, n) for n in range(5)] + [(other, 0)])
        assert [(i.topic, i.offset) for i in whole] == expected
        [fifth] = [i for i in whole if i.topic == topic and i.offset == 4]
        assert fifth == Item(
            stream=(topic, 0, 0),
            offset=4,
            topic=topic,
            key=b"k4",
            value=b"v4",
            headers=(("n", b"4"),),
            timestamp_ms=fifth.timestamp_ms,
        )
        from_three = await read(FromOffset(3), topic)
        assert _offsets(from_three) == [3, 4, 5]
        assert await read(FromOffset(99), topic) == []
        assert _offsets(await read(Since(middle), topic)) == [3, 4, 5, 6, 7]
        # from a record's own time: that record first (offset 2 is 10 ms older)
        assert _offsets(await read(Since(from_three[0].timestamp_ms), topic)) == list(range(3, 9))
        assert await read(Since(time.time_ns() // 1_000_000 + 3_600_000), topic) == []
        assert await read(FromOffset(0), empty) == []
    finally:
        await bus.close()
