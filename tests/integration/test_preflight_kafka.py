"""A broker without idempotent producers (Tansu is one) is named as such, with the fix,
by ``relay check --connect`` and by ``relay serve``, instead of spooling forever."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from aiokafka.errors import KafkaConnectionError, UnknownError

from relay.bus import BusError
from relay.bus.kafka.probe import IdempotenceUnsupported, start_failure
from relay.config import Kafka, parse
from tests.broker import Broker
from tests.support import free_port, unique

pytestmark = pytest.mark.integration


def _relay(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relay", *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def _config(tmp_path: Path, broker: Broker, idempotence: bool) -> str:
    path = tmp_path / "relay.yaml"
    path.write_text(
        f"data_dir: {tmp_path / 'var'}\n"
        f"listen: {{host: 127.0.0.1, port: {free_port()}}}\n"
        f"kafka: {{bootstrap_servers: '{broker.bootstrap}', "
        f"idempotence: {str(idempotence).lower()}}}\n"
        f"topics: {{events: {unique('pf.events')}}}\n"
    )
    return str(path)


def test_a_broker_without_idempotence_is_named(tmp_path: Path, broker: Broker) -> None:
    config = _config(tmp_path, broker, idempotence=True)
    expected = (
        f"the Kafka broker at {broker.bootstrap} does not support idempotent producers "
        "(it answered UnknownError); set kafka.idempotence: false"
    )
    checked = _relay("check", "--config", config, "--connect")
    assert checked.returncode == 1
    assert checked.stderr == f"relay: kafka: {expected}\n"
    served = _relay("serve", "--config", config)
    assert served.returncode == 1
    assert served.stderr.splitlines()[-1] == f"relay: cannot start the bus: {expected}"
    assert "kafka_unavailable_spooling" not in served.stderr


def test_check_connect_reports_the_broker_and_missing_topics(
    tmp_path: Path, broker: Broker
) -> None:
    checked = _relay("check", "--config", _config(tmp_path, broker, idempotence=False), "--connect")
    assert checked.returncode == 0, checked.stderr
    assert (
        f"kafka    reached {broker.bootstrap}; producer starts (idempotence off" in checked.stdout
    )
    assert "topics not on the broker yet: pf.events." in checked.stdout


def test_check_connect_names_an_unreachable_broker(tmp_path: Path) -> None:
    path = tmp_path / "relay.yaml"
    path.write_text(
        f"data_dir: {tmp_path}\n"
        f"kafka: {{bootstrap_servers: '127.0.0.1:{free_port()}', request_timeout_ms: 2000}}\n"
    )
    checked = _relay("check", "--config", str(path), "--connect")
    assert checked.returncode == 1
    [line] = checked.stderr.splitlines()
    assert line.startswith("relay: kafka: cannot connect to Kafka at ")


def _kafka(servers: str, idempotence: bool) -> Kafka:
    config = parse(
        f"kafka: {{bootstrap_servers: '{servers}', idempotence: {str(idempotence).lower()}, "
        "request_timeout_ms: 5000}",
        env={},
    )
    assert config.kafka is not None
    return config.kafka


async def test_the_probe_tells_missing_idempotence_from_an_outage(broker: Broker) -> None:
    """In process, what ``relay serve`` raises after a producer failed to start (Tansu has no
    idempotent producers; a start without idempotence succeeds there)."""
    servers = f"{broker.bootstrap},{broker.bootstrap}"
    refused = await start_failure(_kafka(servers, idempotence=True), UnknownError())
    assert type(refused) is IdempotenceUnsupported
    assert str(refused) == (
        f"the Kafka broker at {servers} does not support idempotent producers "
        "(it answered UnknownError); set kafka.idempotence: false"
    )
    # Without idempotence configured, or when the first start could not even connect, the
    # broker's features are not the reason: the plain error, with the cause.
    for config, exc in [
        (_kafka(broker.bootstrap, idempotence=False), UnknownError()),
        (_kafka(broker.bootstrap, idempotence=True), KafkaConnectionError("gone")),
    ]:
        error = await start_failure(config, exc)
        assert type(error) is BusError
        assert str(error) == f"cannot connect to Kafka at ['{broker.bootstrap}']: {exc}"


async def test_the_probe_of_an_unreachable_broker_is_not_idempotence() -> None:
    away = f"127.0.0.1:{free_port()}"
    error = await start_failure(_kafka(away, idempotence=True), UnknownError())
    assert type(error) is BusError
    assert str(error).startswith(f"cannot connect to Kafka at ['{away}']: ")


async def test_the_probe_waits_for_a_silent_broker_no_longer_than_its_request_timeout() -> None:
    """A port that accepts and never answers (a hung broker): the probe's producer gives up
    after ``request_timeout_ms`` (1 s here; aiokafka's own default is 40 s)."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the client hangs up
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    hung = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    config = parse(f"kafka: {{bootstrap_servers: '{hung}', request_timeout_ms: 1000}}", env={})
    assert config.kafka is not None
    try:
        async with asyncio.timeout(20):  # far below the 40 s a missing timeout would take
            error = await start_failure(config.kafka, UnknownError())
    finally:
        server.close()
    assert type(error) is BusError
