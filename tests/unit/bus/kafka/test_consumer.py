"""The Kafka readers hold a consumer only between start() and close(): one built and dropped
(a worker whose sender failed to start, a replay refused before reading), or one whose start
failed (no broker), leaves no unclosed AIOKafkaConsumer behind. No broker is needed: the
bootstrap address is a closed loopback port."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
    UnsupportedVersionError,
)
from aiokafka.structs import OffsetAndTimestamp
from structlog.testing import capture_logs

import relay.bus.kafka.consumer as consumer_module
from relay.bus import FromOffset, Since, StartFrom, Stream, Subscription
from relay.bus.kafka.consumer import KafkaRange, KafkaSubscription, _Rebalance
from relay.config import Kafka
from tests.support import free_port

Reader = Callable[[Kafka], Subscription]

READERS: dict[str, Reader] = {
    "subscription": lambda kafka: KafkaSubscription(kafka, "relay.sub.crm", ["events"], "latest"),
    "range": lambda kafka: KafkaRange(kafka, ["events"], FromOffset(0)),
}


def nowhere() -> Kafka:
    return Kafka(bootstrap_servers=f"127.0.0.1:{free_port()}", request_timeout_ms=1000)


@contextmanager
def no_unclosed_consumer() -> Iterator[None]:
    """Fails if a consumer is collected unclosed in the block (dropped objects are freed at
    once, or by the collector run at its end)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield
        gc.collect()
    assert [str(w.message) for w in caught if "AIOKafkaConsumer" in str(w.message)] == []


@pytest.mark.parametrize("make", READERS.values(), ids=READERS.keys())
async def test_a_reader_built_and_dropped_leaves_no_consumer(make: Reader) -> None:
    gc.collect()  # whatever an earlier test left is not this test's
    with no_unclosed_consumer():
        reader = make(nowhere())
        del reader


@pytest.mark.parametrize("make", READERS.values(), ids=READERS.keys())
async def test_closing_a_reader_never_started_does_nothing(make: Reader) -> None:
    reader = make(nowhere())
    await reader.close()
    await reader.close()


@pytest.mark.parametrize("make", READERS.values(), ids=READERS.keys())
async def test_a_start_that_fails_leaves_no_consumer(make: Reader) -> None:
    gc.collect()
    with no_unclosed_consumer():
        reader = make(nowhere())
        with pytest.raises(KafkaConnectionError):
            await reader.start()
        del reader  # the worker does not close a reader whose start raised


# KafkaSubscription's own branching on answers Tansu cannot be made to give on cue (a
# position retention already deleted, a broker without ListOffsets by time, a commit
# refused, several partitions' ends): FakeConsumer stands in for the AIOKafkaConsumer
# start() would build, at the aiokafka client boundary, and records what relay asked of it.
EVENTS = [TopicPartition("events", p) for p in range(5)]


@dataclass
class FakeConsumer:
    assigned: set[TopicPartition] = field(default_factory=lambda: {EVENTS[0]})
    fetch_error: Exception | None = None
    ends: dict[TopicPartition, int] = field(default_factory=dict)
    by_time: dict[TopicPartition, OffsetAndTimestamp] = field(default_factory=dict)
    by_time_error: Exception | None = None
    commit_error: Exception | None = None
    highwaters: dict[TopicPartition, int] = field(default_factory=dict)
    positions: dict[TopicPartition, int] = field(default_factory=dict)
    seeks: list[tuple[TopicPartition, int]] = field(default_factory=list)
    rewound: list[TopicPartition] = field(default_factory=list)
    committed: list[dict[TopicPartition, int]] = field(default_factory=list)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {tp.partition for tp in self.assigned if tp.topic == topic}

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = set(partitions)

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    async def getmany(self, *partitions: TopicPartition, **options: Any) -> dict[Any, Any]:
        if self.fetch_error is not None:
            raise self.fetch_error
        return {}

    async def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        self.rewound.extend(partitions)

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.ends[tp] for tp in partitions if tp in self.ends}

    async def offsets_for_times(
        self, query: dict[TopicPartition, int]
    ) -> dict[TopicPartition, OffsetAndTimestamp | None]:
        if self.by_time_error is not None:
            raise self.by_time_error
        return {tp: self.by_time.get(tp) for tp in query}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.commit_error is not None:
            raise self.commit_error
        self.committed.append(dict(offsets))

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.highwaters.get(tp)

    async def position(self, tp: TopicPartition) -> int:
        return self.positions[tp]


def subscribed(
    consumer: FakeConsumer, start_from: StartFrom = "latest", anchor_ms: int | None = None
) -> KafkaSubscription:
    subscription = KafkaSubscription(nowhere(), "relay.sub.crm", ["events"], start_from, anchor_ms)
    subscription._consumer = consumer
    return subscription


async def test_a_position_retention_deleted_resumes_at_the_oldest_record_left() -> None:
    gone = TopicPartition("other", 0)  # no longer this member's: left to its next owner
    consumer = FakeConsumer(
        assigned={EVENTS[0], EVENTS[1]},
        fetch_error=OffsetOutOfRangeError({EVENTS[1]: 40, gone: 7}),
    )
    with capture_logs() as lines:
        assert await subscribed(consumer).fetch(10, 0.1) == []
    assert consumer.rewound == [EVENTS[1]]
    assert lines == [
        {
            "event": "position_out_of_range",
            "topic": "events",
            "partition": 1,
            "log_level": "warning",
        }
    ]


@pytest.mark.parametrize(
    "error",
    [OffsetOutOfRangeError(), OffsetOutOfRangeError("no positions"), NoOffsetForPartitionError()],
)
async def test_an_error_naming_no_partition_moves_nothing(error: Exception) -> None:
    consumer = FakeConsumer(fetch_error=error, ends={EVENTS[0]: 3})
    assert await subscribed(consumer).fetch(10, 0.1) == []
    assert (consumer.rewound, consumer.seeks, consumer.committed) == ([], [], [])


async def test_a_broker_without_offsets_by_time_places_an_anchor_at_the_end() -> None:
    consumer = FakeConsumer(
        ends={EVENTS[0]: 12},
        by_time_error=UnsupportedVersionError(),
        fetch_error=NoOffsetForPartitionError(EVENTS[0]),
    )
    with capture_logs() as lines:
        await subscribed(consumer, anchor_ms=1_000).fetch(10, 0.1)
    assert consumer.seeks == [(EVENTS[0], 12)]
    assert consumer.committed == [{EVENTS[0]: 12}]
    assert lines[0] == {
        "event": "anchor_by_time_unsupported",
        "topic": "events",
        "partition": 0,
        "log_level": "warning",
    }
    assert [line["event"] for line in lines] == [
        "anchor_by_time_unsupported",
        "subscription_anchored",
    ]


async def test_a_placement_whose_commit_fails_is_kept_and_said() -> None:
    consumer = FakeConsumer(
        ends={EVENTS[0]: 5},
        commit_error=KafkaError("rebalancing"),
        fetch_error=NoOffsetForPartitionError(EVENTS[0]),
    )
    with capture_logs() as lines:
        await subscribed(consumer).fetch(10, 0.1)
    assert consumer.seeks == [(EVENTS[0], 5)]
    assert lines[-1] == {
        "event": "commit_failed",
        "error": "KafkaError: rebalancing",
        "log_level": "warning",
    }


async def test_a_commit_refused_is_said_not_raised() -> None:
    consumer = FakeConsumer(commit_error=KafkaError("moved"))
    subscription = subscribed(consumer)
    subscription._assign({EVENTS[0]})
    with capture_logs() as lines:
        await subscription.commit({("events", 0, 1): 9})
    assert lines == [
        {"event": "commit_failed", "error": "KafkaError: moved", "log_level": "warning"}
    ]


async def test_the_backlog_adds_every_fetched_partition_from_the_later_end() -> None:
    consumer = FakeConsumer(
        assigned=set(EVENTS),
        # 0: the ListOffsets end past the stalled highwater; 1: no ListOffsets answer;
        # 2: never fetched (no highwater), left out; 3: a position past both ends counts 0;
        # 4: empty, no ListOffsets answer either: 0
        highwaters={EVENTS[0]: 10, EVENTS[1]: 7, EVENTS[3]: 3, EVENTS[4]: 0},
        ends={EVENTS[0]: 12, EVENTS[3]: 3},
        positions={EVENTS[0]: 4, EVENTS[1]: 2, EVENTS[3]: 5, EVENTS[4]: 0},
    )
    assert await subscribed(consumer).backlog() == 8 + 5


async def test_a_reassigned_partition_is_a_new_stream_and_revoked_as_such() -> None:
    consumer = FakeConsumer(assigned={EVENTS[0], EVENTS[1]})
    subscription = subscribed(consumer)
    revoked: list[set[Stream]] = []

    async def record(streams: set[Stream]) -> None:
        revoked.append(streams)

    listener = _Rebalance(subscription)
    await listener.on_partitions_revoked({EVENTS[0]})  # no callback set: nothing to tell
    subscription.on_revoked = record
    await listener.on_partitions_assigned({EVENTS[0], EVENTS[1]})
    await listener.on_partitions_revoked({EVENTS[0]})
    await listener.on_partitions_assigned({EVENTS[0]})
    await listener.on_partitions_revoked({EVENTS[0], EVENTS[1]})
    assert revoked == [{("events", 0, 1)}, {("events", 0, 2), ("events", 1, 1)}]
    # a position read under the first assignment is not committed under the second
    await subscription.commit({("events", 0, 1): 3, ("events", 1, 1): 4})
    await subscription.commit({("events", 0, 2): 5})
    assert consumer.committed == [{EVENTS[1]: 4}, {EVENTS[0]: 5}]


async def test_the_readers_consumers_are_made_with_relays_settings() -> None:
    config = Kafka(
        bootstrap_servers=f"127.0.0.1:{free_port()}",
        request_timeout_ms=1000,
        session_timeout_ms=12_345,
        heartbeat_interval_ms=2_345,
    )
    subscription = KafkaSubscription(config, "relay.sub.crm", ["events", "orders"], "latest")
    replay = KafkaRange(config, ["events"], FromOffset(0))
    for reader in (subscription, replay):
        with pytest.raises(KafkaConnectionError):
            await reader.start()
    grouped, alone = subscription._consumer, replay._consumer
    assert (grouped._group_id, alone._group_id) == ("relay.sub.crm", None)
    assert (grouped._enable_auto_commit, alone._enable_auto_commit) == (False, False)
    assert grouped._auto_offset_reset == "none"  # relay places a partition itself
    assert grouped._isolation_level == "read_committed"
    assert (grouped._session_timeout_ms, grouped._heartbeat_interval_ms) == (12_345, 2_345)
    assert grouped.subscription() == {"events", "orders"}
    listener = grouped._subscription.listener
    assert isinstance(listener, _Rebalance) and listener.subscription is subscription


@pytest.mark.parametrize(("timestamp", "placed"), [(1_000, 3), (999, 12)])
async def test_an_anchor_takes_a_record_at_its_exact_time(timestamp: int, placed: int) -> None:
    # a broker's answer to "the first record at or after 1000": one at 1000 is taken; a
    # placeholder earlier than asked (as some brokers give for "nothing that late") is not
    consumer = FakeConsumer(
        ends={EVENTS[0]: 12},
        by_time={EVENTS[0]: OffsetAndTimestamp(3, timestamp)},
        fetch_error=NoOffsetForPartitionError(EVENTS[0]),
    )
    await subscribed(consumer, anchor_ms=1_000).fetch(10, 0.1)
    assert consumer.seeks == [(EVENTS[0], placed)]
    assert consumer.committed == [{EVENTS[0]: placed}]


@pytest.mark.parametrize(("timestamp", "placed"), [(1_000, 3), (999, 12)])
async def test_a_replay_since_a_time_takes_a_record_at_that_time(
    monkeypatch: pytest.MonkeyPatch, timestamp: int, placed: int
) -> None:
    # KafkaRange takes its consumer from outside_group in start(): the fake goes there
    consumer = FakeConsumer(
        ends={EVENTS[0]: 12}, by_time={EVENTS[0]: OffsetAndTimestamp(3, timestamp)}
    )
    monkeypatch.setattr(consumer_module, "outside_group", lambda config: consumer)
    await KafkaRange(nowhere(), ["events"], Since(ms=1_000)).start()
    assert consumer.seeks == [(EVENTS[0], placed)]
