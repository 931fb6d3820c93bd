"""Delivery you can trust from the first event, and watch while it happens (issues 11, 17.2).

``relay serve`` as a real process (embedded log and Kafka/Tansu), real local subscribers,
``/metrics`` read with prometheus_client's parser, the JSON log lines read from stderr.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.broker import Broker
from tests.factories import chatwoot_message
from tests.subscriber import Subscriber
from tests.support import free_port, unique, wait_ready

pytestmark = pytest.mark.integration

TOKEN = "dev-nexloo-token-0123456789"
ADMIN = "admin-token-0123456789abcdef"


def config_text(tmp_path: Path, port: int, subscribers: str, kafka: Broker | None = None) -> str:
    text = f"""
listen: {{host: 127.0.0.1, port: {port}}}
data_dir: {tmp_path / "var"}
logging: {{level: info, format: json}}
admin: {{token: {ADMIN}}}
sources:
  nexloo: {{provider: chatwoot, tokens: [{TOKEN}]}}
subscribers:
{subscribers}
"""
    if kafka is not None:
        text += f"""
kafka: {{bootstrap_servers: "{kafka.bootstrap}", idempotence: false,
        session_timeout_ms: 6000, heartbeat_interval_ms: 1000}}
topics: {{events: {unique("tr.events")}, raw: {unique("tr.raw")},
         deadletter: {unique("tr.dead")}}}
"""
    return text


class Relay:
    def __init__(self, port: int, log_path: Path, process: asyncio.subprocess.Process) -> None:
        self.port = port
        self.log_path = log_path
        self.process = process

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log_path.read_text().splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines

    async def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        async with aiohttp.ClientSession() as session, session.get(self.url("/metrics")) as r:
            text = await r.text()
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }


@asynccontextmanager
async def relay_serve(tmp_path: Path, text: str, port: int) -> AsyncIterator[Relay]:
    path = tmp_path / "relay.yaml"
    path.write_text(text)
    log_path = tmp_path / f"relay-{port}.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "relay",
            "serve",
            "--config",
            str(path),
            env={**os.environ},
            stdout=log,
            stderr=log,
        )
        try:
            await wait_ready(port, process, within=30)
            yield Relay(port, log_path, process)
        finally:
            if process.returncode is None:
                process.terminate()
            await process.wait()


async def post_all(port: int, bodies: list[bytes]) -> list[str]:
    """Post every body at once; every one must be answered 202. Returns the event ids."""
    async with aiohttp.ClientSession() as session:

        async def one(body: bytes) -> list[str]:
            async with session.post(
                f"http://127.0.0.1:{port}/v1/hooks/nexloo?token={TOKEN}",
                data=body,
                headers={"Content-Type": "application/json"},
            ) as response:
                assert response.status == 202, await response.text()
                ids: list[str] = (await response.json())["ids"]
                return ids

        answers = await asyncio.gather(*(one(body) for body in bodies))
    return [event_id for ids in answers for event_id in ids]


async def until(check: Callable[[], bool], within: float = 20.0) -> None:
    async with asyncio.timeout(within):
        while True:
            if check():
                return
            await asyncio.sleep(0.05)


def delivered_ids(subscriber: Subscriber) -> set[str]:
    return {r.headers["webhook-id"] for r in subscriber.delivered()}


# --- 1. start position ------------------------------------------------------------------


@pytest.mark.parametrize("bus", ["embedded", "kafka"])
async def test_posts_right_after_ready_reach_a_new_subscriber(
    tmp_path: Path, subscriber: Subscriber, broker: Broker, bus: str
) -> None:
    port = free_port()
    text = config_text(
        tmp_path,
        port,
        f'  - {{name: fresh, url: "{subscriber.url}"}}',  # start_from: latest (the default)
        broker if bus == "kafka" else None,
    )
    async with relay_serve(tmp_path, text, port) as relay:
        ids = await post_all(port, [chatwoot_message(n) for n in range(80)])
        assert len(set(ids)) == 80
        await subscriber.wait_for(lambda s: delivered_ids(s) >= set(ids), within=40)
        lines = relay.log_lines()
    assert delivered_ids(subscriber) == set(ids)
    if bus == "kafka":
        assert any(line["event"] == "subscription_anchored" for line in lines)


# --- 2 and 6. flaky is not dead; every failed attempt is visible ------------------------


def flaky_two_in_three() -> Callable[[Subscriber, bytes, dict[str, str]], Any]:
    tries: dict[str, int] = {}

    def script(s: Subscriber, body: bytes, headers: dict[str, str]) -> Any:
        event_id = headers["webhook-id"]
        tries[event_id] = tries.get(event_id, 0) + 1
        return (503, {"Retry-After": "0"}) if tries[event_id] < 3 else 200

    return script


async def test_an_endpoint_failing_two_in_three_gets_every_event_and_each_failure_is_seen(
    tmp_path: Path, subscriber: Subscriber
) -> None:
    subscriber.script = flaky_two_in_three()
    port = free_port()
    # default circuit breaker; a retry budget of 5 attempts
    text = config_text(
        tmp_path,
        port,
        f'  - {{name: flaky, url: "{subscriber.url}", max_in_flight: 16, start_from: earliest,\n'
        "     retry: {max_attempts: 5, initial: 10ms, max: 200ms}}",
    )
    async with relay_serve(tmp_path, text, port) as relay:
        ids = await post_all(port, [chatwoot_message(n) for n in range(80)])
        await subscriber.wait_for(lambda s: delivered_ids(s) >= set(ids), within=30)
        # relay counts an attempt when its answer is back, and the lag gauge refreshes once
        # a second: wait until both have caught up with what the subscriber saw
        lag = ("relay_consumer_lag", (("subscriber", "flaky"),))
        done = ("relay_deliveries_total", (("outcome", "delivered"), ("subscriber", "flaky")))
        for _ in range(200):
            metrics = await relay.metrics()
            if metrics.get(lag) == 0 and metrics.get(done) == 80:
                break
            await asyncio.sleep(0.1)
        lines = relay.log_lines()
    assert len(subscriber.delivered()) == 80
    assert len(subscriber.received) == 240  # three attempts each, none given up

    failed = [line for line in lines if line["event"] == "delivery_attempt_failed"]
    assert len(failed) == 160
    first = failed[0]
    assert first["subscriber"] == "flaky"
    assert first["event_id"] in ids
    assert first["attempt"] in (1, 2)
    assert first["status"] == 503
    assert first["error"].startswith("HTTP 503")
    assert first["retry_in"] == 0  # Retry-After: 0
    assert {line["attempt"] for line in failed} == {1, 2}
    assert not [line for line in lines if line["event"] == "circuit_opened"]

    def sample(name: str, **labels: str) -> float:
        return metrics[(name, tuple(sorted({"subscriber": "flaky", **labels}.items())))]

    assert sample("relay_delivery_attempts_total", outcome="http_5xx") == 160
    assert sample("relay_delivery_attempts_total", outcome="delivered") == 80
    assert sample("relay_deliveries_total", outcome="retried") == 160
    assert sample("relay_deliveries_total", outcome="delivered") == 80
    assert sample("relay_deliveries_total", outcome="deadlettered") == 0
    assert sample("relay_circuit_state") == 0
    assert sample("relay_subscriber_disabled") == 0
    assert sample("relay_consumer_lag") == 0


# --- in-process: DeliveryService on Kafka ------------------------------------------------


def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    from relay.metrics import exposition

    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition()[0].decode())
        for sample in family.samples
    }


def metric(name: str, subscriber: str, **labels: str) -> float:
    key = (name, tuple(sorted({"subscriber": subscriber, **labels}.items())))
    return scrape().get(key, 0.0)


@pytest.fixture
def topics(tmp_path: Path) -> dict[str, str]:
    return {"events": unique("tr.events"), "dead": unique("tr.dead"), "data_dir": str(tmp_path)}


@pytest.mark.parametrize("failure", ["refused", "timeout"])
async def test_a_dead_endpoint_is_probed_with_backoff_while_a_healthy_one_keeps_its_pace(
    broker: Broker, kafka_bus: Any, subscriber: Subscriber, topics: dict[str, str], failure: str
) -> None:
    from tests.factories import chat_event, kafka_config, records
    from tests.support import running

    released = asyncio.Event()

    async def hang(s: Subscriber, body: bytes, headers: dict[str, str]) -> int:
        await released.wait()  # past relay's 100 ms timeout
        return 200

    hanging = await Subscriber(script=hang).start()
    dead_url = f"http://127.0.0.1:{free_port()}/hook" if failure == "refused" else hanging.url
    name = f"dead-{failure}"
    config = kafka_config(
        broker,
        topics,
        f'  - {{name: {name}, url: "{dead_url}", start_from: earliest, max_in_flight: 16,\n'
        "     timeout: 100ms, retry: {max_attempts: 1000, initial: 10ms, max: 20ms},\n"
        "     circuit_breaker: {no_success_for: 500ms, min_attempts: 5, cooldown: 200ms,\n"
        "                       cooldown_max: 800ms, half_open_attempts: 2}}\n"
        f'  - {{name: alive, url: "{subscriber.url}", start_from: earliest}}',
    )
    await kafka_bus.publish(records(topics["events"], [chat_event(k, k) for k in range(40)]))
    service = await running(config, kafka_bus)
    try:
        await subscriber.wait_for(lambda s: len(s.delivered()) == 40, within=20)
        await until(lambda: metric("relay_circuit_state", name) > 0)
        breaker = service.workers[name].sender.breaker
        attempts = "error"
        await asyncio.sleep(0.3)  # attempts already in flight when it opened end
        before = metric("relay_delivery_attempts_total", name, outcome=attempts)
        assert before >= 5
        # the healthy subscriber keeps its pace while the dead one is open
        later = [chat_event(k, 1000 + k) for k in range(40)]
        await kafka_bus.publish(records(topics["events"], later))
        await subscriber.wait_for(lambda s: len(s.delivered()) == 80, within=10)
        await asyncio.sleep(2)
        after = metric("relay_delivery_attempts_total", name, outcome=attempts)
        # probes only: waits of 0.2, 0.4, 0.8, 0.8 ... s, two probes each (unbroken, 16 in
        # flight every ~20 ms would be well over a thousand attempts)
        assert after - before <= 2 * 6
        assert after - before >= 2  # but it is probed
        assert breaker._wait == 0.8  # doubled up to cooldown_max
        assert metric("relay_circuit_state", name) in (1, 2)
        assert service.workers[name].stats.delivered == 0
    finally:
        async with asyncio.timeout(15):  # a hang here must fail the test, not stall the suite
            await service.stop(grace=0)
            released.set()  # or closing the server waits for every hanging handler
            await hanging.close()


async def test_restart_in_the_middle_of_a_backoff_keeps_the_attempt_count(
    broker: Broker, kafka_bus: Any, subscriber: Subscriber, topics: dict[str, str]
) -> None:
    from tests.factories import chat_event, kafka_config, records
    from tests.support import consume, running

    # the second answer asks for a minute's wait (relay reads Retry-After on a 503): the
    # stop below lands inside it however loaded the machine (an attempt in flight when the
    # process stops is sent again: at least once); the others ask for none
    subscriber.script = lambda s, body, headers: (
        503,
        {"Retry-After": "60" if len(s.received) == 1 else "0"},
    )
    config = kafka_config(
        broker,
        topics,
        f'  - {{name: patient, url: "{subscriber.url}", start_from: earliest,\n'
        "     retry: {max_attempts: 4, initial: 10ms, max: 60s, jitter: false}}",
    )
    event = chat_event(1, 1)
    await kafka_bus.publish(records(topics["events"], [event]))
    first = await running(config, kafka_bus)
    await until(lambda: "patient" in first.workers and first.workers["patient"].stats.retried == 2)
    from relay.delivery.state import DeliveryState

    stored = DeliveryState(Path(topics["data_dir"]))
    # the count is stored just after it is counted (a thread write): wait for the disk too
    await until(lambda: stored.attempts("patient") == {event.id: 2})
    stored.close()
    await first.stop(grace=0)  # in the middle of the second backoff
    second = await running(config, kafka_bus)
    try:
        [dead] = await consume(broker.bootstrap, topics["dead"], 1, within=30)
    finally:
        await second.stop()
    headers = dict(dead.headers)
    assert headers["relay-attempts"] == b"4"
    assert len(subscriber.received) == 4  # two before the restart, two after: not 2 + 4
    assert second.workers["patient"].stats.deadlettered == 1
    # settled: a third run has nothing left to count
    assert DeliveryState(Path(topics["data_dir"])).attempts("patient") == {}


# --- 3. 410 Gone disables; an admin re-enables where it stopped --------------------------


async def test_410_disables_until_an_admin_enables_it_where_it_stopped(
    broker: Broker,
    kafka_bus: Any,
    subscriber: Subscriber,
    topics: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from relay.cli import main
    from tests.factories import chat_event, records
    from tests.support import drain, make_config, relay_client

    gone = {"now": False}

    def script(s: Subscriber, body: bytes, headers: dict[str, str]) -> int:
        if len(s.received) == 2:
            gone["now"] = True
        return 410 if gone["now"] else 200

    subscriber.script = script
    text = f"""
data_dir: {topics["data_dir"]}
admin: {{token: {ADMIN}}}
kafka: {{bootstrap_servers: "{broker.bootstrap}", idempotence: false,
        session_timeout_ms: 1000, heartbeat_interval_ms: 300}}
topics: {{events: {topics["events"]}, deadletter: {topics["dead"]}}}
subscribers:
  - {{name: leaving, url: "{subscriber.url}", start_from: earliest}}
"""
    config_file = tmp_path / "relay.yaml"
    config_file.write_text(text)
    events = [chat_event(1, n) for n in range(6)]  # one key: delivered in order
    await kafka_bus.publish(records(topics["events"], events))
    auth = {"Authorization": f"Bearer {ADMIN}"}
    async with relay_client(make_config(text)) as client:
        await subscriber.wait_for(lambda s: len(s.received) == 3)
        await asyncio.sleep(1.5)
        assert len(subscriber.received) == 3  # no attempt after the 410
        exposed = await (await client.get("/metrics")).text()
        metrics = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(exposed)
            for sample in family.samples
        }
        assert metrics[("relay_subscriber_disabled", (("subscriber", "leaving"),))] == 1

        assert main(["check", "--config", str(config_file)]) == 0
        assert "DISABLED leaving: its endpoint answered 410" in capsys.readouterr().out

        assert (await client.post("/admin/api/subscribers/leaving/enable")).status == 401
        unknown = await client.post("/admin/api/subscribers/nobody/enable", headers=auth)
        assert unknown.status == 404
        gone["now"] = False
        subscriber.script = None  # the endpoint is back
        answer = await client.post("/admin/api/subscribers/leaving/enable", headers=auth)
        assert answer.status == 200
        assert await answer.json() == {
            "subscriber": "leaving",
            "enabled": True,
            "was_disabled": True,
        }
        await subscriber.wait_for(lambda s: len(s.delivered()) == 6, within=20)
    ids = [r.headers["webhook-id"] for r in subscriber.delivered()]
    assert ids == [e.id for e in events]  # resumed at the event that got the 410
    assert subscriber.received[2].status == 410
    assert await drain(broker.bootstrap, topics["dead"], settle=0.5) == []  # nothing lost
    assert main(["check", "--config", str(config_file)]) == 0
    assert "DISABLED" not in capsys.readouterr().out


async def test_a_disabled_subscriber_stays_disabled_across_restarts_until_its_config_changes(
    broker: Broker, kafka_bus: Any, subscriber: Subscriber, topics: dict[str, str]
) -> None:
    from tests.factories import chat_event, kafka_config, records
    from tests.support import running

    subscriber.script = lambda s, body, headers: 410

    def line(extra: str) -> str:
        return f'  - {{name: moved, url: "{subscriber.url}", start_from: earliest{extra}}}'

    config = kafka_config(broker, topics, line(""))
    await kafka_bus.publish(records(topics["events"], [chat_event(1, 1), chat_event(1, 2)]))
    service = await running(config, kafka_bus)
    await subscriber.wait_for(lambda s: len(s.received) == 1)
    await until(lambda: "moved" in service.disabled)
    await service.stop()
    service = await running(config, kafka_bus)  # a restart: still disabled, no attempt
    await until(lambda: "moved" in service.disabled)
    await asyncio.sleep(1)
    assert len(subscriber.received) == 1
    subscriber.script = None
    changed = kafka_config(broker, topics, line(", timeout: 5s"))
    try:
        await service.reconcile(changed)  # a changed configuration enables it again
        await subscriber.wait_for(lambda s: len(s.delivered()) == 2)
    finally:
        await service.stop()
    assert "moved" not in service.disabled


# --- 4. poison records --------------------------------------------------------------------


async def test_poison_records_are_skipped_counted_and_never_read_again(
    broker: Broker, kafka_bus: Any, subscriber: Subscriber, topics: dict[str, str]
) -> None:
    from relay.bus import Record
    from tests.factories import chat_event, kafka_config, records
    from tests.support import running

    deep = b'{"id": "x", "nested": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    poison = [
        deep,  # 200 KB, too deep for any decoder
        b"\xff\xfe\x00 not json",  # foreign bytes
        b'{"specversion": "1.0", "id": 5, "type": ["x"], "source": {}}',  # wrong types
        b"[1, 2, 3]",  # JSON, not an object
    ]
    key = b"nexloo:1"
    await kafka_bus.publish(
        [Record(topic=topics["events"], value=value, key=key) for value in poison]
    )
    good = [chat_event(1, n) for n in range(3)]
    await kafka_bus.publish(records(topics["events"], good))
    config = kafka_config(
        broker,
        topics,
        f'  - {{name: plain, url: "{subscriber.url}", start_from: earliest}}\n'
        f'  - {{name: picky, url: "{subscriber.url}", start_from: earliest,\n'
        "     match: {where: {data.message.direction: incoming}}}",
    )
    for _run in range(2):  # the second run reads nothing of it again
        service = await running(config, kafka_bus)
        try:
            await subscriber.wait_for(lambda s: len(s.delivered()) == 2 * len(good))
            await asyncio.sleep(1.2)  # a commit and a lag refresh
            lag = [
                value
                for (name, labels), value in scrape().items()
                if name == "relay_consumer_lag" and dict(labels)["subscriber"] == "plain"
            ]
        finally:
            await service.stop()
        assert lag == [0]  # one series per subscriber, however often it restarts
    for name in ("plain", "picky"):
        assert metric("relay_delivery_skipped_total", name, reason="not_a_cloudevent") == 4
        assert service.workers[name].stats.skipped == 0  # second run: committed past them
    assert len(subscriber.delivered()) == 2 * len(good)


async def test_a_bug_while_delivering_dead_letters_the_event_and_the_worker_carries_on(
    tmp_path: Path, subscriber: Subscriber
) -> None:
    """The bug is stood in for by a sender that raises for one event (nothing else faked)."""
    from relay.bus.embedded import LOG_FILE, EmbeddedLog, EmbeddedSubscription, read
    from relay.deadletters import DeadLetters
    from relay.delivery.sender import Sender
    from relay.delivery.worker import SubscriberWorker
    from tests.factories import chat_event, records
    from tests.support import make_config

    events = [chat_event(1, n) for n in range(3)]
    doomed = events[1].id

    class Buggy(Sender):
        async def deliver(self, event_id: str, *args: Any, **kwargs: Any) -> Any:
            if event_id == doomed:
                raise KeyError("a bug")
            return await super().deliver(event_id, *args, **kwargs)

    config = make_config(
        f"""
data_dir: {tmp_path}
subscribers: [{{name: buggy, url: "{subscriber.url}", start_from: earliest}}]
"""
    )
    [sub] = config.subscribers
    bus = EmbeddedLog(config.data_path)
    await bus.start()
    try:
        await bus.publish(records("chat.events", events))
        worker = SubscriberWorker(
            sub,
            EmbeddedSubscription(config.data_path, "relay.sub.buggy", ["chat.events"], "earliest"),
            Buggy(sub),
            DeadLetters(bus, "relay.deadletter"),
        )
        running = asyncio.create_task(worker.run())
        await subscriber.wait_for(lambda s: len(s.delivered()) == 2)
        await until(lambda: worker.stats.deadlettered == 1)
        worker.stop_reading(1.0)
        await running
    finally:
        await bus.close()
    assert [r.headers["webhook-id"] for r in subscriber.delivered()] == [
        events[0].id,
        events[2].id,
    ]
    [dead] = read(tmp_path / LOG_FILE, "relay.deadletter")
    headers = dict(dead.headers)
    assert headers["relay-reason"] == b"delivery_crashed"
    assert b"a bug" in headers["relay-error"]
    assert headers["relay-event-id"] == doomed.encode()
