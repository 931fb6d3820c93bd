"""Delivery to real HTTP subscribers from the real broker (and from the embedded log)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks

from relay.bus import Record
from relay.bus.embedded import EmbeddedLog
from relay.bus.kafka import KafkaBus
from relay.cloudevents import encode
from relay.providers import NORMALIZERS, Inbound
from tests.broker import Broker
from tests.factories import chat_event, kafka_config, records
from tests.subscriber import Subscriber
from tests.support import consume, locked, make_config, poll_until, running, unique

pytestmark = pytest.mark.integration

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
FAST_RETRY = "{max_attempts: 5, initial: 10ms, max: 50ms}"


@pytest.fixture
def topics(tmp_path: Path) -> dict[str, str]:
    """Unique topics, and a data_dir of the test's own (anchors, attempt counts)."""
    return {"events": unique("dl.events"), "dead": unique("dl.dead"), "data_dir": str(tmp_path)}


async def test_signed_cloudevent_arrives(
    broker: Broker, kafka_bus: KafkaBus, subscriber: Subscriber, topics: dict[str, str]
) -> None:
    config = kafka_config(
        broker,
        topics,
        f"""  - {{name: crm, url: "{subscriber.url}", secret: {SECRET}, start_from: earliest,
       headers: {{X-Team: crm}}}}""",
    )
    event = chat_event(7, 1)
    await kafka_bus.publish(records(topics["events"], [event]))
    service = await running(config, kafka_bus)
    try:
        await subscriber.wait_for(lambda s: len(s.delivered()) == 1)
    finally:
        await service.stop()
    [got] = subscriber.delivered()
    assert got.headers["Content-Type"] == "application/cloudevents+json"
    assert got.headers["webhook-id"] == event.id
    assert got.headers["X-Team"] == "crm"
    verified = standardwebhooks.Webhook(SECRET).verify(got.body, got.headers)
    assert verified["id"] == event.id
    assert got.body == encode(event)


async def test_retries_then_delivers_once(
    broker: Broker, kafka_bus: KafkaBus, subscriber: Subscriber, topics: dict[str, str]
) -> None:
    subscriber.script = lambda s, body, headers: 500 if len(s.received) < 3 else 200
    config = kafka_config(
        broker,
        topics,
        f'  - {{name: flaky, url: "{subscriber.url}", start_from: earliest, retry: {FAST_RETRY}}}',
    )
    await kafka_bus.publish(records(topics["events"], [chat_event(1, 1)]))
    service = await running(config, kafka_bus)
    try:
        await subscriber.wait_for(lambda s: len(s.delivered()) == 1)
        await asyncio.sleep(0.3)
    finally:
        await service.stop()
    assert [r.status for r in subscriber.received] == [500, 500, 500, 200]
    assert service.workers["flaky"].stats.retried == 3
    assert service.workers["flaky"].stats.delivered == 1


async def test_retry_after_is_honoured(
    broker: Broker, kafka_bus: KafkaBus, subscriber: Subscriber, topics: dict[str, str]
) -> None:
    def script(s: Subscriber, body: bytes, headers: dict[str, str]) -> Any:
        return (429, {"Retry-After": "1"}) if not s.received else 200

    subscriber.script = script
    config = kafka_config(
        broker,
        topics,
        f'  - {{name: slow, url: "{subscriber.url}", start_from: earliest, '
        "retry: {max_attempts: 3, initial: 10ms, max: 10s}}",
    )
    await kafka_bus.publish(records(topics["events"], [chat_event(1, 1)]))
    service = await running(config, kafka_bus)
    try:
        await subscriber.wait_for(lambda s: len(s.delivered()) == 1)
    finally:
        await service.stop()
    first, second = subscriber.received
    # without Retry-After the next try would come after at most 10 ms
    assert second.at - first.at >= 0.95


async def test_4xx_goes_to_deadletter_at_once_and_later_events_flow(
    broker: Broker, kafka_bus: KafkaBus, subscriber: Subscriber, topics: dict[str, str]
) -> None:
    poison = chat_event(1, 1)
    subscriber.script = lambda s, body, headers: 400 if headers["webhook-id"] == poison.id else 200
    config = kafka_config(
        broker,
        topics,
        f'  - {{name: strict, url: "{subscriber.url}", start_from: earliest, retry: {FAST_RETRY}}}',
    )
    await kafka_bus.publish(records(topics["events"], [poison, chat_event(1, 2)]))
    service = await running(config, kafka_bus)
    try:
        await subscriber.wait_for(lambda s: len(s.delivered()) == 1)
    finally:
        await service.stop()
    assert [r.status for r in subscriber.received] == [400, 200]  # no retry of the 400
    [dead] = await consume(broker.bootstrap, topics["dead"], 1)
    headers = dict(dead.headers)
    assert dead.value == encode(poison)
    assert dead.key == poison.partitionkey.encode()
    assert headers["relay-reason"] == b"delivery_rejected"
    assert headers["relay-subscriber"] == b"strict"
    assert headers["relay-attempts"] == b"1"
    assert headers["relay-last-status"] == b"400"
    assert headers["relay-event-id"] == poison.id.encode()


async def test_exhausted_retries_deadletter_and_the_subscriber_moves_on(
    broker: Broker, kafka_bus: KafkaBus, subscriber: Subscriber, topics: dict[str, str]
) -> None:
    doomed = chat_event(1, 1)
    subscriber.script = lambda s, body, headers: 503 if headers["webhook-id"] == doomed.id else 200
    config = kafka_config(
        broker,
        topics,
        f'  - {{name: busy, url: "{subscriber.url}", start_from: earliest, '
        "retry: {max_attempts: 3, initial: 10ms, max: 20ms}, "
        "circuit_breaker: {min_attempts: 100}}",
    )
    later = [chat_event(1, 2), chat_event(2, 3)]
    await kafka_bus.publish(records(topics["events"], [doomed, *later]))
    service = await running(config, kafka_bus)
    try:
        await subscriber.wait_for(lambda s: len(s.delivered()) == 2)
    finally:
        await service.stop()
    assert [r.status for r in subscriber.received].count(503) == 3
    assert {r.headers["webhook-id"] for r in subscriber.delivered()} == {e.id for e in later}
    [dead] = await consume(broker.bootstrap, topics["dead"], 1)
    headers = dict(dead.headers)
    assert headers["relay-reason"] == b"delivery_exhausted"
    assert headers["relay-attempts"] == b"3"
    assert headers["relay-last-status"] == b"503"
    assert headers["relay-error"].startswith(b"HTTP 503")


async def test_per_key_order_holds_with_many_keys_in_flight(
    broker: Broker, kafka_bus: KafkaBus, subscriber: Subscriber, topics: dict[str, str]
) -> None:
    subscriber.delay = 0.01
    config = kafka_config(
        broker,
        topics,
        f'  - {{name: ordered, url: "{subscriber.url}", start_from: earliest, max_in_flight: 8}}',
    )
    events = [chat_event(key, key * 100 + seq) for seq in range(8) for key in range(12)]
    await kafka_bus.publish(records(topics["events"], events))
    service = await running(config, kafka_bus)
    try:
        await subscriber.wait_for(lambda s: len(s.delivered()) == len(events), within=30)
    finally:
        await service.stop()
    by_key: dict[str, list[int]] = {}
    for received in subscriber.delivered():
        event = json.loads(received.body)
        by_key.setdefault(event["partitionkey"], []).append(int(event["data"]["message"]["id"]))
    assert len(by_key) == 12
    for sequence in by_key.values():
        assert sequence == sorted(sequence)
    assert 1 < subscriber.max_in_flight <= 8


async def test_a_dead_subscriber_does_not_delay_another(
    broker: Broker, kafka_bus: KafkaBus, subscriber: Subscriber, topics: dict[str, str]
) -> None:
    async def hang(s: Subscriber, body: bytes, headers: dict[str, str]) -> int:
        await asyncio.sleep(60)
        return 200

    dead = await Subscriber(script=hang).start()
    try:
        config = kafka_config(
            broker,
            topics,
            f'  - {{name: dead, url: "{dead.url}", start_from: earliest, timeout: 30s}}\n'
            f'  - {{name: alive, url: "{subscriber.url}", start_from: earliest}}',
        )
        events = [chat_event(key, key) for key in range(20)]
        await kafka_bus.publish(records(topics["events"], events))
        service = await running(config, kafka_bus)
        try:
            # every event reaches the healthy subscriber long before the dead one's timeout
            await subscriber.wait_for(lambda s: len(s.delivered()) == 20, within=15)
            assert service.workers["dead"].stats.delivered == 0
        finally:
            await service.stop(grace=0)
    finally:
        await dead.close()


async def test_restart_mid_stream_redelivers_and_never_skips(
    broker: Broker, kafka_bus: KafkaBus, subscriber: Subscriber, topics: dict[str, str]
) -> None:
    subscriber.delay = 0.02
    config = kafka_config(
        broker,
        topics,
        f'  - {{name: restart, url: "{subscriber.url}", start_from: earliest, max_in_flight: 4}}',
    )
    events = [chat_event(key, key * 1000 + seq) for seq in range(10) for key in range(6)]
    await kafka_bus.publish(records(topics["events"], events))
    first = await running(config, kafka_bus)
    await subscriber.wait_for(lambda s: len(s.delivered()) >= 15)
    await first.stop(grace=0)  # mid-stream: in-flight attempts cancelled, watermark committed
    seen_before = len(subscriber.delivered())
    assert seen_before < len(events)
    second = await running(config, kafka_bus)
    try:
        await subscriber.wait_for(
            lambda s: {json.loads(r.body)["id"] for r in s.delivered()} >= {e.id for e in events},
            within=30,
        )
    finally:
        await second.stop()
    delivered_ids = [json.loads(r.body)["id"] for r in subscriber.delivered()]
    assert set(delivered_ids) == {e.id for e in events}
    # at-least-once: only what was in flight at the stop may come twice
    assert len(delivered_ids) - len(events) <= 4 * 6


async def test_data_format_and_match_filter(
    broker: Broker, kafka_bus: KafkaBus, subscriber: Subscriber, topics: dict[str, str]
) -> None:
    config = kafka_config(
        broker,
        topics,
        f'  - {{name: incoming, url: "{subscriber.url}", start_from: earliest, format: data,\n'
        "       match: {type: [chat.message.created], where: {data.message.direction: incoming}}}",
    )
    incoming, outgoing = chat_event(1, 1), chat_event(1, 2, direction="outgoing")
    await kafka_bus.publish(records(topics["events"], [outgoing, incoming]))
    service = await running(config, kafka_bus)
    try:
        await subscriber.wait_for(lambda s: len(s.delivered()) == 1)
        await asyncio.sleep(0.5)
    finally:
        await service.stop()
    [got] = subscriber.received
    assert got.headers["Content-Type"] == "application/json"
    assert got.headers["webhook-id"] == incoming.id
    data = json.loads(got.body)
    assert data["message"]["id"] == "1" and "specversion" not in data
    # the envelope travels as CloudEvents binary-mode headers
    assert got.headers["ce-type"] == "chat.message.created"
    assert got.headers["ce-id"] == incoming.id
    assert got.headers["ce-specversion"] == "1.0"
    assert got.headers["ce-time"] == incoming.time


async def test_embedded_log_delivery_keeps_its_own_offsets(
    tmp_path: Path, subscriber: Subscriber
) -> None:
    config = make_config(
        f"""
data_dir: {tmp_path}
subscribers:
  - {{name: local, url: "{subscriber.url}", start_from: earliest}}
"""
    )
    bus = EmbeddedLog(config.data_path)
    await bus.start()
    try:
        first_batch = [chat_event(1, 1), chat_event(2, 2)]
        await bus.publish(records("chat.events", first_batch))
        service = await running(config, bus)
        await subscriber.wait_for(lambda s: len(s.delivered()) == 2)
        await service.stop()
        second_batch = [chat_event(1, 3)]
        await bus.publish(records("chat.events", second_batch))
        service = await running(config, bus)
        await subscriber.wait_for(lambda s: len(s.delivered()) == 3)
        await asyncio.sleep(0.3)
        await service.stop()
    finally:
        await bus.close()
    ids = [r.headers["webhook-id"] for r in subscriber.delivered()]
    assert ids == [e.id for e in first_batch + second_batch]  # nothing twice, nothing skipped


async def test_delivery_metrics(
    broker: Broker, kafka_bus: KafkaBus, subscriber: Subscriber, topics: dict[str, str]
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from relay.metrics import exposition

    name = unique("measured").replace(".", "-")  # fresh series: counters live per process
    subscriber.script = lambda s, body, headers: 500 if len(s.received) < 1 else 200
    config = kafka_config(
        broker,
        topics,
        f'  - {{name: {name}, url: "{subscriber.url}", start_from: earliest, retry: {FAST_RETRY}}}',
    )
    await kafka_bus.publish(records(topics["events"], [chat_event(1, 1)]))
    service = await running(config, kafka_bus)
    try:
        await subscriber.wait_for(lambda s: len(s.delivered()) == 1)
        await asyncio.sleep(1.2)  # one lag refresh
        text = exposition()[0].decode()
    finally:
        await service.stop()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    mine = (("outcome", "delivered"), ("subscriber", name))
    assert samples[("relay_deliveries_total", mine)] == 1
    assert samples[("relay_deliveries_total", (("outcome", "retried"), ("subscriber", name)))] == 1
    assert samples[("relay_delivery_seconds_count", (("subscriber", name),))] == 1
    assert samples[("relay_consumer_lag", (("subscriber", name),))] == 0


async def test_embedded_log_second_process_stands_by(
    tmp_path: Path, subscriber: Subscriber
) -> None:
    config = make_config(
        f"""
data_dir: {tmp_path}
subscribers:
  - {{name: single, url: "{subscriber.url}", start_from: earliest}}
"""
    )
    bus = EmbeddedLog(config.data_path)
    await bus.start()
    try:
        active = await running(config, bus)
        # the first one holds the subscriber's lock before the second starts
        await poll_until(lambda: locked(tmp_path / ".relay.sub.single.lock"))
        standby = await running(config, bus)  # same subscriber, same data_dir
        first = [chat_event(1, 1), chat_event(2, 2)]
        await bus.publish(records("chat.events", first))
        await subscriber.wait_for(lambda s: len(s.delivered()) == 2)
        await asyncio.sleep(0.5)
        assert len(subscriber.delivered()) == 2  # delivered once, not once per process
        await active.stop()
        later = [chat_event(3, 3)]
        await bus.publish(records("chat.events", later))
        await subscriber.wait_for(lambda s: len(s.delivered()) == 3, within=10)  # taken over
        await standby.stop()
    finally:
        await bus.close()
    ids = [r.headers["webhook-id"] for r in subscriber.delivered()]
    assert ids == [e.id for e in first + later]


async def test_latest_is_anchored_at_the_first_start(
    broker: Broker, kafka_bus: KafkaBus, subscriber: Subscriber, topics: dict[str, str]
) -> None:
    """``latest`` = from the subscriber's first start, however late its group joins."""
    config = kafka_config(broker, topics, f'  - {{name: anchored, url: "{subscriber.url}"}}')
    before = chat_event(9, 9)
    await kafka_bus.publish(records(topics["events"], [before]))  # before its first start
    await asyncio.sleep(0.01)
    service = await running(config, kafka_bus)
    # at once: the consumer group has not even joined yet
    first = [chat_event(key, key) for key in range(20)]
    await kafka_bus.publish(records(topics["events"], first))
    await subscriber.wait_for(lambda s: len(s.delivered()) == 20)
    await service.stop()
    missed = chat_event(1, 100)
    await kafka_bus.publish(records(topics["events"], [missed]))  # while it was down
    service = await running(config, kafka_bus)
    try:
        await subscriber.wait_for(lambda s: len(s.delivered()) == 21)
        await asyncio.sleep(0.3)
    finally:
        await service.stop()
    ids = [r.headers["webhook-id"] for r in subscriber.delivered()]
    assert sorted(ids[:20]) == sorted(e.id for e in first)
    assert ids[20:] == [missed.id]


async def test_a_restart_before_the_group_ever_joined_keeps_the_start(
    broker: Broker, kafka_bus: KafkaBus, subscriber: Subscriber, topics: dict[str, str]
) -> None:
    config = kafka_config(broker, topics, f'  - {{name: early, url: "{subscriber.url}"}}')
    service = await running(config, kafka_bus)
    await service.stop(grace=0)  # stopped before its group was assigned anything
    published = [chat_event(key, key) for key in range(5)]
    await asyncio.sleep(0.5)
    await kafka_bus.publish(records(topics["events"], published))
    await asyncio.sleep(0.5)
    service = await running(config, kafka_bus)  # its start is the first one, not now
    try:
        await subscriber.wait_for(lambda s: len(s.delivered()) == 5)
    finally:
        await service.stop()


async def test_delivers_from_a_binary_mode_topic(
    broker: Broker, kafka_bus: KafkaBus, subscriber: Subscriber, topics: dict[str, str]
) -> None:
    from relay.cloudevents import to_binary

    event = chat_event(4, 4)
    value, headers = to_binary(event)
    await kafka_bus.publish(
        [Record(topic=topics["events"], value=value, key=b"k", headers=headers)]
    )
    config = kafka_config(
        broker, topics, f'  - {{name: bin, url: "{subscriber.url}", start_from: earliest}}'
    )
    service = await running(config, kafka_bus)
    try:
        await subscriber.wait_for(lambda s: len(s.delivered()) == 1)
    finally:
        await service.stop()
    [got] = subscriber.delivered()
    assert got.headers["Content-Type"] == "application/cloudevents+json"
    assert json.loads(got.body) == json.loads(encode(event))  # structured over HTTP


async def test_binary_mode_dead_letters_are_structured_and_replayable(
    broker: Broker, kafka_bus: KafkaBus, subscriber: Subscriber, topics: dict[str, str]
) -> None:
    from relay.cloudevents import decode, to_binary

    subscriber.script = lambda s, body, headers: 400
    event = chat_event(6, 6)
    value, headers = to_binary(event)
    await kafka_bus.publish(
        [Record(topic=topics["events"], value=value, key=b"k", headers=headers)]
    )
    config = kafka_config(
        broker, topics, f'  - {{name: binrej, url: "{subscriber.url}", start_from: earliest}}'
    )
    service = await running(config, kafka_bus)
    try:
        await subscriber.wait_for(lambda s: len(s.received) == 1)
    finally:
        await service.stop()
    [dead] = await consume(broker.bootstrap, topics["dead"], 1)
    assert decode(dead.value) == event  # the whole event, not the bare data


async def test_control_characters_in_ids_cannot_break_delivery(
    broker: Broker, kafka_bus: KafkaBus, subscriber: Subscriber, topics: dict[str, str]
) -> None:
    """A sender controls ids that end up in ce-* headers: CR/LF must not strand a key."""
    body = {
        "type": "ReceivedCallback",
        "messageId": "m1",
        "phone": "5544\r\nX-Evil: 1",
        "text": {"message": "oi"},
    }
    [event] = NORMALIZERS["plugchat"](
        Inbound(source="pc", body=json.dumps(body).encode(), received_at="-", kind="receiveMessage")
    )
    config = kafka_config(
        broker,
        topics,
        f'  - {{name: data, url: "{subscriber.url}", start_from: earliest, format: data}}',
    )
    await kafka_bus.publish(records(topics["events"], [event, chat_event(1, 2)]))
    service = await running(config, kafka_bus)
    try:
        await subscriber.wait_for(lambda s: len(s.delivered()) == 2)
    finally:
        await service.stop()
    [injected] = [
        r for r in subscriber.delivered() if r.headers["ce-partitionkey"].startswith("pc:")
    ]
    assert "X-Evil" not in injected.headers
    assert injected.headers["ce-partitionkey"] == "pc:5544%0D%0AX-Evil: 1"


async def test_a_second_member_joining_rebalances_without_stalling_or_losing(
    broker: Broker, kafka_bus: KafkaBus, subscriber: Subscriber, topics: dict[str, str]
) -> None:
    subscriber.delay = 0.01
    config = kafka_config(
        broker, topics, f'  - {{name: shared, url: "{subscriber.url}", start_from: earliest}}'
    )
    first_batch = [chat_event(key, key * 100) for key in range(24)]
    await kafka_bus.publish(records(topics["events"], first_batch))
    one = await running(config, kafka_bus)
    await subscriber.wait_for(lambda s: len(s.delivered()) >= 5)
    two = await running(config, kafka_bus)  # same group: partitions are split between them
    second_batch = [chat_event(key, key * 100 + 1) for key in range(24)]
    await kafka_bus.publish(records(topics["events"], second_batch))
    wanted = {e.id for e in first_batch + second_batch}
    try:
        await subscriber.wait_for(
            lambda s: {r.headers["webhook-id"] for r in s.delivered()} >= wanted, within=30
        )
    finally:
        await two.stop()
        await one.stop()
    delivered = len(subscriber.delivered())
    # the positions committed through the rebalance hold: a new member finds nothing left
    three = await running(config, kafka_bus)
    await asyncio.sleep(2.5)
    await three.stop()
    assert len(subscriber.delivered()) == delivered
