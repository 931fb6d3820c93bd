"""``relay serve --workers 2`` on the embedded log, as a real process tree.

Each request goes on a connection of its own, so the kernel spreads them between the two
workers; a test that needs both to have served checks that both wrote metrics files.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from relay.bus.embedded import LOG_FILE, read
from tests.integration.supervised import Supervised, lock_holder, reserve_port
from tests.subscriber import Subscriber
from tests.support import poll_until

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ADMIN_TOKEN = "a-long-enough-admin-token-for-the-tests-0123456789"


def config_text(data_dir: Path, sources: list[str], extra: str = "") -> str:
    listed = ", ".join(f"{name}: {{provider: chatwoot}}" for name in sources)
    return f"""
data_dir: {data_dir}
sources: {{{listed}}}
logging: {{level: info, format: json}}
shutdown_grace: 10s
{extra}
"""


@pytest.fixture
async def supervised(tmp_path: Path) -> AsyncIterator[list[Supervised]]:
    started: list[Supervised] = []
    yield started
    for relay in started:
        await relay.kill_all()


def body(n: int) -> str:
    return json.dumps({"event": "conversation_created", "id": n, "account_id": 1, "status": "open"})


async def post_each_on_its_own(
    port: int, source: str, numbers: range, ids: set[str] | None = None
) -> list[int]:
    """Statuses of one POST per number, each on a new connection (so on any worker);
    the acknowledged event ids go to ``ids``."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(n: int) -> int:
            async with session.post(
                f"http://127.0.0.1:{port}/v1/hooks/{source}",
                data=body(n),
                headers={"Content-Type": "application/json"},
            ) as response:
                if response.status == 202 and ids is not None:
                    ids.update((await response.json())["ids"])
                return response.status

        return list(await asyncio.gather(*(one(n) for n in numbers)))


async def scrape(port: int, path: str = "/metrics") -> str:
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session,
        session.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        assert response.status == 200
        return await response.text()


def sample(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_two_workers_share_the_port_and_metrics_add_up(
    tmp_path: Path, supervised: list[Supervised]
) -> None:
    config = tmp_path / "relay.yaml"
    config.write_text(config_text(tmp_path / "var", ["cw"]))
    relay = Supervised(config, 2, tmp_path / "relay.log")
    supervised.append(relay)
    await relay.start()
    assert len(relay.workers_now()) == 2

    statuses = await post_each_on_its_own(relay.port, "cw", range(40))
    assert statuses == [202] * 40
    assert len(read(tmp_path / "var" / LOG_FILE, topic="chat.events")) == 40
    # both workers served (each keeps its own counter file), so one worker's count is not 40
    counters = sorted((tmp_path / "var" / "metrics").glob("counter_*.db"))
    assert len(counters) == 2
    for _ in range(6):  # whichever worker answers the scrape
        text = await scrape(relay.port)
        assert sample(text, 'relay_requests_total{outcome="accepted",source="cw"}') == 40
    served = {line["worker"] for line in relay.events("listening")}
    assert served == {0, 1}

    relay.signal(signal.SIGTERM)
    assert await relay.wait() == 0
    assert relay.workers_now() == []


async def test_sighup_and_admin_reload_reach_every_worker(
    tmp_path: Path, supervised: list[Supervised]
) -> None:
    config = tmp_path / "relay.yaml"
    admin_reserved = reserve_port()  # the admin listener binds it too (SO_REUSEADDR)
    admin_port = admin_reserved.getsockname()[1]
    admin = f"admin: {{token: {ADMIN_TOKEN}, listen: {{host: 127.0.0.1, port: {admin_port}}}}}"
    config.write_text(config_text(tmp_path / "var", ["cw"], admin))
    relay = Supervised(config, 2, tmp_path / "relay.log")
    supervised.append(relay)
    await relay.start(wait=False)
    await poll_until(lambda: len(relay.events("worker_started")) == 2)
    for _ in range(20):  # reloads while the workers import and start do not end them
        relay.signal(signal.SIGHUP)
        await asyncio.sleep(0.1)
    await relay.wait_listening(2)
    assert relay.events("worker_exited") == []
    assert 202 not in await post_each_on_its_own(relay.port, "added", range(10))

    config.write_text(config_text(tmp_path / "var", ["cw", "added"], admin))
    before = len(relay.events("reloaded"))
    relay.signal(signal.SIGHUP)
    await relay.poll(
        lambda: len(relay.events("reloaded")) >= before + 2, 20, "both workers reloaded"
    )
    # were it one worker only, about half of these would be refused
    assert await post_each_on_its_own(relay.port, "added", range(30)) == [202] * 30

    config.write_text(config_text(tmp_path / "var", ["cw", "added", "later"], admin))
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"http://127.0.0.1:{admin_port}/admin/reload",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as response,
    ):
        assert response.status == 200
        assert "later" in (await response.json())["sources"]
    # worker 0 reloaded for the request, then the supervisor's SIGHUP reloads both
    await relay.poll(
        lambda: len(relay.events("reloaded")) >= before + 5, 20, "the HTTP reload spread"
    )
    assert await post_each_on_its_own(relay.port, "later", range(30)) == [202] * 30
    # the admin listener is worker 0's alone: metrics there add up every worker's
    text = await scrape(admin_port)
    assert sample(text, 'relay_requests_total{outcome="accepted",source="later"}') == 30
    admin_reserved.close()


async def test_embedded_delivery_runs_in_one_worker_and_the_other_takes_over(
    tmp_path: Path, supervised: list[Supervised]
) -> None:
    subscriber = await Subscriber().start()
    subscribers = (
        f"subscribers: [{{name: crm, url: '{subscriber.url}', secret: {SECRET}, "
        "start_from: earliest, retry: {initial: 100ms, max: 1s}}]"
    )
    config = tmp_path / "relay.yaml"
    config.write_text(config_text(tmp_path / "var", ["cw"], subscribers))
    relay = Supervised(config, 2, tmp_path / "relay.log")
    supervised.append(relay)
    try:
        await relay.start()
        lock = tmp_path / "var" / ".relay.sub.crm.lock"
        await poll_until(lambda: lock.exists() and lock_holder(lock) is not None)
        active = lock_holder(lock)
        assert active in relay.workers_now()
        acked: set[str] = set()
        assert await post_each_on_its_own(relay.port, "cw", range(20), acked) == [202] * 20
        await subscriber.wait_for(lambda s: len(s.delivered()) >= 20)

        # the lag gauge reaches the shared metrics (each worker copies it there every second)
        lag = 'relay_consumer_lag{subscriber="crm"}'
        for _ in range(200):
            if sample(await scrape(relay.port), lag) == 0:
                break
            await asyncio.sleep(0.1)
        assert sample(await scrape(relay.port), lag) == 0

        signal_pid = active
        assert signal_pid is not None
        os.kill(signal_pid, signal.SIGKILL)
        # the standby (or the restarted worker) takes the subscriber over
        await poll_until(
            lambda: lock_holder(lock) not in (None, signal_pid), within=30, what="a new holder"
        )
        assert await post_each_on_its_own(relay.port, "cw", range(20, 40), acked) == [202] * 20
        # at least once: what the killed worker had not committed comes again
        await poll_until(
            lambda: {json.loads(r.body)["id"] for r in subscriber.delivered()} >= acked,
            within=30,
            what="every acknowledged event delivered",
        )
        assert len(acked) == 40
        # and the supervisor brought the killed worker back
        await relay.wait_listening(3)
        assert len(relay.workers_now()) == 2
        assert signal_pid not in relay.workers_now()
        assert relay.events("worker_exited")[0]["code"] == -signal.SIGKILL
    finally:
        await subscriber.close()


@pytest.mark.parametrize("bus_kind", ["embedded", "kafka"])
async def test_a_subscriber_disabled_by_one_process_stops_in_the_others(
    tmp_path: Path, bus_kind: str, request: pytest.FixtureRequest
) -> None:
    """The admin API reaches one worker; the one delivering may be another."""
    from relay.bus import Bus
    from relay.bus.embedded import EmbeddedLog
    from relay.bus.kafka import KafkaBus
    from relay.delivery.service import DeliveryService
    from tests.integration.test_delivery_promises import chat_event, records
    from tests.support import make_config, unique

    subscriber = await Subscriber().start()
    topic = unique("workers.events")
    prelude = f"data_dir: {tmp_path}"
    if bus_kind == "kafka":
        broker = request.getfixturevalue("broker")
        prelude += (
            f'\nkafka: {{bootstrap_servers: "{broker.bootstrap}", idempotence: false,\n'
            "        session_timeout_ms: 1000, heartbeat_interval_ms: 300}"
        )
    config = make_config(
        f"{prelude}\ntopics: {{events: {topic}}}\n"
        f'subscribers: [{{name: crm, url: "{subscriber.url}", start_from: earliest}}]\n'
    )
    bus: Bus = EmbeddedLog(tmp_path) if config.kafka is None else KafkaBus(config.kafka)
    await bus.start()
    services = [DeliveryService(config, bus) for _ in range(2)]
    try:
        for service in services:
            service.disabled_poll = 0.2
            await service.start()
        await bus.publish(records(topic, [chat_event(1, 1)]))
        await subscriber.wait_for(lambda s: len(s.delivered()) == 1)
        # disabled through the second; on the embedded log the first one is the active one
        assert await services[1].disable("crm")
        await poll_until(lambda: "crm" in services[0].disabled, what="the first one noticed")
        await bus.publish(records(topic, [chat_event(2, 2), chat_event(3, 3)]))
        await asyncio.sleep(1.5)
        assert len(subscriber.delivered()) == 1
    finally:
        for service in services:
            await service.stop()
        await bus.close()
        await subscriber.close()


async def test_a_worker_that_keeps_dying_young_stops_relay_after_backing_off(
    tmp_path: Path, supervised: list[Supervised]
) -> None:
    config = tmp_path / "relay.yaml"
    config.write_text(config_text(tmp_path / "var", ["cw"]))
    relay = Supervised(config, 2, tmp_path / "relay.log")
    supervised.append(relay)
    await relay.start()
    killed: list[int] = []
    while relay.process is not None and relay.process.returncode is None and len(killed) < 5:
        slot0 = [line["pid"] for line in relay.events("worker_started") if line["slot"] == 0]
        if slot0[-1] not in killed:
            await poll_until(lambda pid=slot0[-1]: pid in relay.workers_now())
            os.kill(slot0[-1], signal.SIGKILL)
            killed.append(slot0[-1])
        await asyncio.sleep(0.05)
    assert await relay.wait() == 1
    exited = relay.events("worker_exited")
    assert [line["restart_in"] for line in exited] == [0.5, 1.0, 2.0, 4.0]
    assert relay.events("worker_keeps_dying")[0]["deaths"] == 5
    # the other worker was stopped in order
    assert [line["code"] for line in relay.events("worker_stopped")] == [0]


async def test_a_second_relay_on_the_port_is_refused_and_the_first_keeps_serving(
    tmp_path: Path, supervised: list[Supervised]
) -> None:
    """Started at the same moment, both pass the start-up check of the port; the supervisor's
    bind decides: one relay holds the port, the other exits 1 saying so. With the workers
    each binding with SO_REUSEPORT both ran, splitting the traffic between them."""
    relays = []
    for name in ("one", "two"):
        config = tmp_path / f"{name}.yaml"
        config.write_text(config_text(tmp_path / name, ["cw"]))
        port = relays[0].port if relays else None
        relays.append(Supervised(config, 2, tmp_path / f"{name}.log", port=port))
    supervised.extend(relays)
    await asyncio.gather(*(relay.start(wait=False) for relay in relays))

    def exited() -> list[Supervised]:
        return [r for r in relays if r.process is not None and r.process.returncode is not None]

    await poll_until(lambda: exited(), within=40, what="one relay refused")
    (refused,) = exited()
    (serving,) = [relay for relay in relays if relay is not refused]
    assert refused.process is not None and refused.process.returncode == 1
    assert f"cannot listen on 127.0.0.1:{serving.port} (listen)" in refused.log.read_text()
    assert "the port is in use" in refused.log.read_text()
    assert refused.events("worker_started") == []  # it never got as far as a worker
    await serving.wait_listening(2)

    statuses = await post_each_on_its_own(serving.port, "cw", range(20))
    assert statuses == [202] * 20
    # every request reached the relay that holds the port
    assert len(read(serving.config.parent / serving.config.stem / LOG_FILE, "chat.events")) == 20
    assert not (refused.config.parent / refused.config.stem / LOG_FILE).exists()


async def test_a_connection_made_while_the_workers_start_waits_and_is_served(
    tmp_path: Path, supervised: list[Supervised]
) -> None:
    """The supervisor binds the port before it starts any worker: a sender that connects
    then is held in the listen backlog and answered once a worker is up, not refused."""
    config = tmp_path / "relay.yaml"
    config.write_text(config_text(tmp_path / "var", ["cw"]))
    relay = Supervised(config, 2, tmp_path / "relay.log")
    supervised.append(relay)
    await relay.start(wait=False)

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while True:
            try:
                return await asyncio.open_connection("127.0.0.1", relay.port)
            except ConnectionRefusedError:
                assert relay.process is not None and relay.process.returncode is None
                await asyncio.sleep(0.01)

    reader, writer = await asyncio.wait_for(connect(), timeout=40)
    # connected before any worker was up: a worker logs bus_started before it listens
    assert relay.events("bus_started") == []
    payload = body(1).encode()
    writer.write(
        b"POST /v1/hooks/cw HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(payload), payload)
    )
    answer = await asyncio.wait_for(reader.read(), timeout=40)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 202"), answer[:200]
    assert len(read(tmp_path / "var" / LOG_FILE, topic="chat.events")) == 1
