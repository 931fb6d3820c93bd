"""Helpers shared by the test suites: fixture files, free ports, relay apps, Kafka reads."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord
from yarl import URL

from relay.app import build_app
from relay.app.serve import Listener
from relay.bus import Bus
from relay.config import Config, parse
from relay.delivery.service import DeliveryService

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_bytes(relative: str) -> bytes:
    return (FIXTURES / relative).read_bytes()


def json_objects(value: Any, found: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Every object in decoded JSON ``value``, itself first, then depth first in order."""
    found = [] if found is None else found
    if isinstance(value, dict):
        found.append(value)
        for item in value.values():
            json_objects(item, found)
    elif isinstance(value, list):
        for item in value:
            json_objects(item, found)
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique(prefix: str) -> str:
    return f"{prefix}.{uuid.uuid4().hex[:8]}"


def make_config(yaml_text: str, **env: str) -> Config:
    return parse(yaml_text, env=env)


class RelayTestServer(TestServer):
    """aiohttp's TestServer with the port served as ``relay serve`` serves it: the lean
    server for hooks unless ``listen.server: aiohttp`` (:class:`relay.app.serve.Listener`)."""

    listener: Listener | None = None

    async def start_server(self, loop: asyncio.AbstractEventLoop | None = None, **kw: Any) -> None:
        if self.runner:
            return
        self._loop = loop
        self.runner = await self._make_runner(handler_cancellation=True, **kw)
        await self.runner.setup()
        self.listener = Listener(self.app, self.runner)
        sock = socket.socket()
        sock.bind((self.host, 0))
        await self.listener.start(self.host, 0, [sock])
        self.port = sock.getsockname()[1]
        self.scheme = "http"
        self._root = URL(f"http://{self.host}:{self.port}")

    async def close(self) -> None:
        if self.started and not self.closed and self.listener is not None:
            await self.listener.stop(5.0)
        await super().close()


@asynccontextmanager
async def relay_client(config: Config, **options: Any) -> AsyncIterator[TestClient[Any, Any]]:
    """A real relay app on a loopback port, with a client pointed at it; ``options`` go to
    :func:`relay.app.build_app` (``bus``, ``role``, ``config_path``, ...)."""
    client: TestClient[Any, Any] = TestClient(RelayTestServer(build_app(config, **options)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def from_the_beginning(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    """A started consumer with no group, reading ``topic`` from its first record."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    return consumer


async def consume(
    bootstrap: str, topic: str, count: int, within: float = 15.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read ``count`` records of a topic from the beginning (fails after ``within`` s)."""
    consumer = await from_the_beginning(bootstrap, topic)
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        async with asyncio.timeout(within):
            while len(records) < count:
                batch = await consumer.getmany(timeout_ms=200)
                for messages in batch.values():
                    records.extend(messages)
    except TimeoutError:
        raise AssertionError(f"only {len(records)} of {count} records arrived on {topic}") from None
    finally:
        await consumer.stop()
    return records


async def drain(
    bootstrap: str, topic: str, settle: float = 1.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record currently on a topic (waits ``settle`` seconds for stragglers)."""
    consumer = await from_the_beginning(bootstrap, topic)
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        idle = 0.0
        while idle < settle:
            batch = await consumer.getmany(timeout_ms=200)
            got = [m for messages in batch.values() for m in messages]
            records.extend(got)
            idle = 0.0 if got else idle + 0.2
    finally:
        await consumer.stop()
    return records


async def consume_ids(
    bootstrap: str, topic: str, ids: set[str], within: float = 15.0
) -> dict[str, bytes]:
    """Read a topic from the beginning until every CloudEvent id in ``ids`` was seen."""
    consumer = await from_the_beginning(bootstrap, topic)
    found: dict[str, bytes] = {}
    try:
        async with asyncio.timeout(within):
            while not ids <= found.keys():
                batch = await consumer.getmany(timeout_ms=200)
                for messages in batch.values():
                    for message in messages:
                        event_id = dict(message.headers).get("ce_id", b"").decode()
                        if event_id in ids:
                            found[event_id] = message.value
    except TimeoutError:
        missing = ids - found.keys()
        raise AssertionError(f"{len(missing)} of {len(ids)} events never reached {topic}") from None
    finally:
        await consumer.stop()
    return found


async def wait_ready(port: int, process: asyncio.subprocess.Process, within: float = 20) -> None:
    """Wait until a ``relay serve`` process answers /readyz with 200."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        for _ in range(int(within / 0.05)):
            if process.returncode is not None:
                raise AssertionError("relay exited before becoming ready")
            try:
                async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("relay did not become ready")


async def poll_until(
    check: Callable[[], object], within: float = 20.0, every: float = 0.05, what: str = ""
) -> None:
    """Wait until ``check()`` is truthy, looking every ``every`` s (fails after ``within`` s).

    For states no event announces (a worker anchored, a process stopped): a poll waits as
    long as needed and no longer, where a fixed sleep guesses.
    """
    try:
        async with asyncio.timeout(within):
            while True:
                if check():
                    return
                await asyncio.sleep(every)
    except TimeoutError:
        raise AssertionError(f"not within {within} s: {what or check}") from None


def locked(path: Path) -> bool:
    """Whether another open file holds an exclusive ``flock`` on ``path`` (e.g. the embedded
    log's one-process-per-subscriber lock)."""
    import fcntl

    if not path.exists():
        return False
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return False


async def running(config: Config, bus: Bus) -> DeliveryService:
    """relay's delivery side for ``config``'s subscribers, started on ``bus``."""
    service = DeliveryService(config, bus)
    await service.start()
    return service


async def eventually(check: Callable[[], Any], within: float = 15.0) -> Any:
    """``await check()`` until it is truthy, and that value (fails after ``within`` s)."""
    async with asyncio.timeout(within):
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(0.1)


async def post_hook(client: TestClient[Any, Any], fixture: str) -> str:
    """Post a Chatwoot fixture to source ``nexloo`` (token ``t0k3n``): its one event id."""
    body = fixture_bytes(f"chatwoot/{fixture}")
    response = await client.post(
        "/v1/hooks/nexloo?token=t0k3n", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status == 202
    [event_id] = (await response.json())["ids"]
    return str(event_id)


def assert_durable(conn: sqlite3.Connection) -> None:
    """202 ⇒ durable rests on WAL and ``synchronous=FULL`` (an fsync at each commit).

    ``kill -9`` cannot tell FULL from OFF (committed WAL pages survive in the OS page
    cache), and power loss is not simulated, so the settings themselves are asserted on
    the connections relay writes with (tests/README.md, M09).
    """
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # 0 OFF 1 NORMAL 2 FULL
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
