"""Fault injection against real processes: nothing answered 202 is ever lost.

relay runs as ``relay serve`` (a real process) on Kafka (a Tansu broker of the test's own)
while a load of concurrent webhooks runs; the broker is paused, relay is killed with
SIGKILL or stopped with SIGTERM mid-load; then every acknowledged event id must be on
the topic. Each test prints its figures (sent, acknowledged, found, lost).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from relay.bus import Record
from relay.bus.embedded import EmbeddedLog, read
from tests.broker import Broker
from tests.integration.supervised import Supervised, lock_holder
from tests.subscriber import Subscriber
from tests.support import consume_ids, free_port, poll_until, unique, wait_ready

pytestmark = pytest.mark.integration

TOTAL = 300
CONCURRENCY = 16


@dataclass
class Load:
    port: int
    sent: int = 0
    acked: set[str] = field(default_factory=set)
    refused: int = 0
    other: dict[int, int] = field(default_factory=dict)
    acked_count: int = 0

    async def run(self, numbers: range, on_ack: Callable[[int], None] | None = None) -> None:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in numbers:
            queue.put_nowait(n)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await asyncio.gather(
                *(self._worker(session, queue, on_ack) for _ in range(CONCURRENCY))
            )

    async def _worker(
        self,
        session: aiohttp.ClientSession,
        queue: asyncio.Queue[int],
        on_ack: Callable[[int], None] | None,
    ) -> None:
        while not queue.empty():
            n = queue.get_nowait()
            body = {"event": "conversation_created", "id": n, "account_id": 1, "status": "open"}
            self.sent += 1
            try:
                async with session.post(
                    f"http://127.0.0.1:{self.port}/v1/hooks/cw",
                    data=json.dumps(body),
                    headers={"Content-Type": "application/json"},
                ) as response:
                    if response.status == 202:
                        self.acked.update((await response.json())["ids"])
                        self.acked_count += 1
                        if on_ack is not None:
                            on_ack(self.acked_count)
                    else:
                        self.other[response.status] = self.other.get(response.status, 0) + 1
            except (TimeoutError, aiohttp.ClientError):
                self.refused += 1


class Relay:
    def __init__(self, config: Path, port: int) -> None:
        self.config = config
        self.port = port
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "relay",
            "serve",
            "--config",
            str(self.config),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            env=os.environ.copy(),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await wait_ready(self.port, self.process)

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    async def wait(self, within: float = 30) -> int:
        assert self.process is not None
        async with asyncio.timeout(within):
            return await self.process.wait()


@pytest.fixture
async def relay_on(own_broker: Broker, tmp_path: Path) -> AsyncIterator[Callable[[], Relay]]:
    events = unique("faults.events")
    config = tmp_path / "relay.yaml"
    config.write_text(
        f"""
data_dir: {tmp_path / "var"}
kafka: {{bootstrap_servers: "{own_broker.bootstrap}", idempotence: false, spool_after: 1s}}
sources: {{cw: {{provider: chatwoot}}}}
topics: {{events: {events}}}
logging: {{level: warning}}
shutdown_grace: 15s
"""
    )
    relays: list[Relay] = []
    port = free_port()

    def new_relay() -> Relay:
        relay = Relay(config, port)
        relays.append(relay)
        return relay

    new_relay.events = events  # type: ignore[attr-defined]
    yield new_relay
    for relay in relays:
        if relay.process is not None and relay.process.returncode is None:
            relay.process.kill()
            await relay.process.wait()


def report(name: str, load: Load, found: int) -> None:
    lost = len(load.acked) - found
    print(
        f"\n{name}: sent={load.sent} acknowledged={load.acked_count} refused={load.refused} "
        f"other={load.other} found={found} lost={lost}"
    )


async def test_kill_9_mid_load_loses_nothing_acknowledged(
    own_broker: Broker, relay_on: Callable[[], Relay]
) -> None:
    first = relay_on()
    await first.start()
    load = Load(first.port)

    def kill_at_100(acked: int) -> None:
        if acked == 100:
            first.signal(signal.SIGKILL)

    await load.run(range(TOTAL), on_ack=kill_at_100)
    assert await first.wait() == -signal.SIGKILL
    second = relay_on()
    await second.start()
    await load.run(range(TOTAL, TOTAL + 50))
    found = await consume_ids(own_broker.bootstrap, relay_on.events, load.acked, within=30)  # type: ignore[attr-defined]
    report("kill -9", load, len(found))
    assert load.acked_count >= 150
    assert set(found) == load.acked


async def test_sigterm_mid_load_exits_0_and_loses_nothing(
    own_broker: Broker, relay_on: Callable[[], Relay]
) -> None:
    relay = relay_on()
    await relay.start()
    load = Load(relay.port)

    def term_at_100(acked: int) -> None:
        if acked == 100:
            relay.signal(signal.SIGTERM)

    await load.run(range(TOTAL), on_ack=term_at_100)
    assert await relay.wait() == 0
    found = await consume_ids(own_broker.bootstrap, relay_on.events, load.acked, within=30)  # type: ignore[attr-defined]
    report("SIGTERM", load, len(found))
    assert load.acked_count >= 100
    assert set(found) == load.acked
    assert set(load.other) <= {503}  # requests caught by the shutdown get 503, not 5xx noise


async def test_broker_paused_mid_load_loses_nothing(
    own_broker: Broker, relay_on: Callable[[], Relay]
) -> None:
    relay = relay_on()
    await relay.start()
    load = Load(relay.port)
    paused: list[asyncio.Task[None]] = []

    async def pause_broker() -> None:
        own_broker.process.send_signal(signal.SIGSTOP)
        await asyncio.sleep(2.5)
        own_broker.process.send_signal(signal.SIGCONT)

    def pause_at_100(acked: int) -> None:
        if acked == 100:
            paused.append(asyncio.ensure_future(pause_broker()))

    try:
        await load.run(range(TOTAL), on_ack=pause_at_100)
        await asyncio.gather(*paused)
    finally:
        own_broker.process.send_signal(signal.SIGCONT)
    found = await consume_ids(own_broker.bootstrap, relay_on.events, load.acked, within=60)  # type: ignore[attr-defined]
    report("broker SIGSTOP", load, len(found))
    assert load.acked_count == TOTAL  # the spool kept answering 202
    assert set(found) == load.acked


# --- relay serve --workers 2 ------------------------------------------------------------


@pytest.fixture
async def two_workers(own_broker: Broker, tmp_path: Path) -> AsyncIterator[Supervised]:
    events = unique("faults.events")
    config = tmp_path / "relay.yaml"
    config.write_text(
        f"""
data_dir: {tmp_path / "var"}
kafka: {{bootstrap_servers: "{own_broker.bootstrap}", idempotence: false, spool_after: 1s}}
sources: {{cw: {{provider: chatwoot}}}}
topics: {{events: {events}}}
logging: {{level: info, format: json}}
shutdown_grace: 15s
"""
    )
    relay = Supervised(config, 2, tmp_path / "relay.log")
    relay.topic = events  # type: ignore[attr-defined]
    yield relay
    await relay.kill_all()


def spooled(data_dir: Path) -> dict[str, int]:
    """Records waiting in each spool file under ``data_dir``."""
    return {
        path.name: len(read(path, limit=100_000))
        for path in sorted(data_dir.glob("spool*.sqlite3"))
    }


async def test_kill_9_of_one_worker_loses_nothing_and_its_spool_is_drained(
    own_broker: Broker, two_workers: Supervised, tmp_path: Path
) -> None:
    relay, data_dir = two_workers, tmp_path / "var"
    await relay.start()
    load = Load(relay.port)
    await load.run(range(100))
    # the broker stops answering: both workers spool what they acknowledge
    own_broker.process.send_signal(signal.SIGSTOP)
    killed: list[int] = []

    def kill_a_spooling_worker(acked: int) -> None:
        if killed or acked < 140:
            return
        for name, count in spooled(data_dir).items():
            holder = lock_holder(data_dir / f".{name}.lock")
            if count and holder is not None:
                os.kill(holder, signal.SIGKILL)
                killed.append(holder)
                return

    try:
        await load.run(range(100, 200), on_ack=kill_a_spooling_worker)
    finally:
        own_broker.process.send_signal(signal.SIGCONT)
    assert killed, f"no worker had spooled anything: {spooled(data_dir)}"
    await relay.wait_listening(3)  # the supervisor started the killed worker again
    assert killed[0] not in relay.workers_now() and len(relay.workers_now()) == 2
    await load.run(range(200, 250))
    found = await consume_ids(own_broker.bootstrap, relay.topic, load.acked, within=60)  # type: ignore[attr-defined]
    report("workers: kill -9 of one", load, len(found))
    assert load.acked_count >= 200
    assert set(found) == load.acked
    # its spool was drained by the worker that took its file over
    await poll_until(lambda: not any(spooled(data_dir).values()), what="every spool drained")
    exited = relay.events("worker_exited")
    assert [line["code"] for line in exited] == [-signal.SIGKILL]


async def test_sigterm_of_the_supervisor_drains_every_worker_and_loses_nothing(
    own_broker: Broker, two_workers: Supervised
) -> None:
    relay = two_workers
    await relay.start()
    workers = relay.workers_now()
    load = Load(relay.port)

    def term_at_100(acked: int) -> None:
        if acked == 100:
            relay.signal(signal.SIGTERM)

    await load.run(range(TOTAL), on_ack=term_at_100)
    assert await relay.wait() == 0
    found = await consume_ids(own_broker.bootstrap, relay.topic, load.acked, within=30)  # type: ignore[attr-defined]
    report("workers: SIGTERM of the supervisor", load, len(found))
    assert load.acked_count >= 100
    assert set(found) == load.acked
    assert set(load.other) <= {503}
    assert sorted(line["code"] for line in relay.events("worker_stopped")) == [0, 0]
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)


async def test_a_spool_left_by_a_worker_that_is_gone_is_drained_by_whoever_starts(
    own_broker: Broker, relay_on: Callable[[], Relay], tmp_path: Path
) -> None:
    # what `workers: 3` left behind in its third worker's spool, now started as one process
    data_dir = tmp_path / "var"
    left = EmbeddedLog(data_dir, "spool-2.sqlite3")
    await left.start()
    ids = {f"left-{n}" for n in range(30)}
    topic = relay_on.events  # type: ignore[attr-defined]
    await left.publish(
        [Record(topic=topic, value=b"{}", headers=(("ce_id", i.encode()),)) for i in sorted(ids)]
    )
    await left.close()
    relay = relay_on()
    await relay.start()
    found = await consume_ids(own_broker.bootstrap, topic, ids, within=30)
    assert set(found) == ids
    await poll_until(lambda: spooled(data_dir) == {"spool.sqlite3": 0, "spool-2.sqlite3": 0})


def delivering_pids(metrics: Path) -> set[str]:
    """The workers whose multiprocess counters count deliveries to a subscriber."""
    from prometheus_client.mmap_dict import MmapedDict

    pids = set()
    for path in metrics.glob("counter_*.db"):
        for key, value, *_ in MmapedDict.read_all_values_from_file(str(path)):
            if '"relay_deliveries_total"' in key and '"delivered"' in key and value > 0:
                pids.add(path.stem.removeprefix("counter_"))
    return pids


async def test_workers_deliver_as_one_consumer_group_through_a_kill_9(
    own_broker: Broker, tmp_path: Path
) -> None:
    subscriber = await Subscriber().start()
    events = unique("faults.events")
    config = tmp_path / "relay.yaml"
    config.write_text(
        f"""
data_dir: {tmp_path / "var"}
kafka: {{bootstrap_servers: "{own_broker.bootstrap}", idempotence: false, spool_after: 1s,
        session_timeout_ms: 1000, heartbeat_interval_ms: 300}}
sources: {{cw: {{provider: chatwoot}}}}
topics: {{events: {events}}}
subscribers: [{{name: crm, url: "{subscriber.url}", start_from: earliest}}]
logging: {{level: info, format: json}}
shutdown_grace: 15s
"""
    )
    relay = Supervised(config, 2, tmp_path / "relay.log")

    def delivered() -> set[str]:
        return {r.headers["webhook-id"] for r in subscriber.delivered()}

    try:
        await relay.start()
        load = Load(relay.port)
        await load.run(range(60))
        await relay.poll(lambda: delivered() >= load.acked, 30, "first delivered")
        # the group gives each worker some of the partitions: both deliver (their counters,
        # added up once a second, say so)
        metrics, more = tmp_path / "var" / "metrics", iter(range(1000, 2000, 10))
        async with asyncio.timeout(30):
            while len(delivering_pids(metrics)) < 2:
                start = next(more)
                await load.run(range(start, start + 10))
                await asyncio.sleep(1.2)
        os.kill(relay.workers_now()[0], signal.SIGKILL)
        await load.run(range(60, 120))
        await relay.poll(lambda: delivered() >= load.acked, 40, "all delivered")
        report("workers: delivery through kill -9", load, len(delivered() & load.acked))
        assert load.acked_count >= 100
        # one group, not one per worker (which would deliver every event twice)
        assert len(subscriber.delivered()) < 1.5 * len(load.acked)
    finally:
        await relay.kill_all()
        await subscriber.close()
