"""Kafka over TLS (Tansu behind stunnel, a CA made here) and SASL (Tansu --authentication)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from relay.bus import BusRefused, open_bus
from relay.bus.kafka.security import client_options, refusal
from relay.config import Kafka
from tests.broker import Broker, running_broker
from tests.integration.tls import TlsBroker, needs_stunnel, tls_broker
from tests.subscriber import Subscriber
from tests.support import FIXTURES, free_port, make_config, relay_client, unique

pytestmark = pytest.mark.integration

TOKEN = "nexloo-token-0123456789abcdef"


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[TlsBroker]:
    with tls_broker(_mkdir(tmp_path / "pki")) as broker:
        yield broker


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _config_text(kafka: str, tmp_path: Path, topics: dict[str, str], extra: str = "") -> str:
    return f"""
data_dir: {tmp_path / "var"}
kafka: {{{kafka}, idempotence: false, spool_after: 5s}}
topics: {{events: {topics["events"]}, raw: {topics["raw"]}, deadletter: {topics["dead"]}}}
sources:
  nexloo: {{provider: chatwoot, tokens: ["{TOKEN}"]}}
{extra}
"""


def _topics() -> dict[str, str]:
    return {"events": unique("tls.events"), "raw": unique("tls.raw"), "dead": unique("tls.dead")}


@needs_stunnel
async def test_ingest_and_delivery_run_over_tls(tls: TlsBroker, tmp_path: Path) -> None:
    """The producer and a subscriber's consumer group both reach Kafka through TLS only."""
    subscriber = await Subscriber().start()
    topics = _topics()
    kafka = (
        f'bootstrap_servers: "{tls.bootstrap}", security_protocol: SSL, ssl_cafile: "{tls.pki.ca}"'
    )
    subscribers = f"""
subscribers:
  - {{name: tls-sub, url: "{subscriber.url}", start_from: earliest,
      retry: {{max_attempts: 3, initial: 10ms, max: 50ms}}}}
"""
    config = make_config(_config_text(kafka, tmp_path, topics, subscribers))
    body = (FIXTURES / "chatwoot" / "nexloo_seed_message_created.json").read_bytes()
    try:
        async with relay_client(config) as client:
            response = await client.post(
                f"/v1/hooks/nexloo?token={TOKEN}",
                data=body,
                headers={"Content-Type": "application/json"},
            )
            assert response.status == 202, await response.text()
            [event_id] = (await response.json())["ids"]
            ready = await client.get("/readyz")
            assert (await ready.json())["mode"] == "direct"  # Kafka took it, not the spool
            await subscriber.wait_for(lambda s: len(s.delivered()) == 1, within=30)
    finally:
        await subscriber.close()
    assert json.loads(subscriber.delivered()[0].body)["id"] == event_id

    # And the raw copy is on Kafka, read back through TLS with the same client options.
    assert config.kafka is not None
    consumer = AIOKafkaConsumer(
        topics["raw"],
        **client_options(config.kafka),
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        async with asyncio.timeout(15):
            got: list[bytes] = []
            while not got:
                batch = await consumer.getmany(timeout_ms=200)
                got = [m.value for messages in batch.values() for m in messages]
    finally:
        await consumer.stop()
    assert got == [body]


def _serve(config_text: str, tmp_path: Path, within: float = 40) -> tuple[int, str, float]:
    """Run ``relay serve`` until it exits; (exit status, stderr, seconds it took)."""
    path = tmp_path / "relay.yaml"
    path.write_text(config_text)
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "relay",
            "serve",
            "--config",
            str(path),
            "--host",
            "127.0.0.1",
            "--port",
            str(free_port()),
        ],
        capture_output=True,
        text=True,
        timeout=within,
    )
    return done.returncode, done.stderr, time.monotonic() - started


def _assert_one_clear_line(stderr: str, *needles: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    last = lines[-1]
    assert last.startswith("relay: cannot start the bus: "), stderr
    for needle in needles:
        assert needle in last, last
    for line in lines[:-1]:  # everything before it is a JSON log line, no traceback
        json.loads(line)
    assert "Traceback" not in stderr
    return last


@needs_stunnel
def test_a_wrong_ca_is_one_clear_line_and_a_failing_exit(tls: TlsBroker, tmp_path: Path) -> None:
    kafka = (
        f'bootstrap_servers: "{tls.bootstrap}", security_protocol: SSL, '
        f'ssl_cafile: "{tls.pki.other_ca}"'
    )
    status, stderr, took = _serve(
        _config_text(kafka, tmp_path, _topics()) + "logging: {format: json}\n", tmp_path
    )
    assert status != 0
    _assert_one_clear_line(stderr, "certificate", "kafka.ssl_cafile")
    assert took < 30  # refused at start, not spooling for ever


@needs_stunnel
def test_the_hostname_is_checked_unless_turned_off(tmp_path: Path) -> None:
    """A certificate for another name fails with ssl_check_hostname on (the default)."""
    with tls_broker(_mkdir(tmp_path / "pki"), san="DNS:kafka.example.invalid") as tls:
        kafka = (
            f'bootstrap_servers: "{tls.bootstrap}", security_protocol: SSL, '
            f'ssl_cafile: "{tls.pki.ca}"'
        )
        status, stderr, _ = _serve(
            _config_text(kafka, tmp_path, _topics()) + "logging: {format: json}\n", tmp_path
        )
        assert status != 0
        _assert_one_clear_line(stderr, "kafka.ssl_check_hostname")

        async def publish_without_hostname_check() -> None:
            from relay.bus import Record
            from relay.bus.kafka import KafkaBus

            config = Kafka(
                bootstrap_servers=tls.bootstrap,
                idempotence=False,
                security_protocol="SSL",
                ssl_cafile=str(tls.pki.ca),
                ssl_check_hostname=False,
            )
            bus = KafkaBus(config)
            await bus.start()
            try:
                await bus.publish([Record(topic=unique("tls.nohost"), value=b"{}")])
            finally:
                await bus.close()

        asyncio.run(publish_without_hostname_check())


@pytest.fixture
def sasl_broker() -> Iterator[str]:
    with running_broker(None, "--authentication") as broker:
        yield broker.bootstrap


def test_sasl_credentials_the_broker_refuses_stop_relay_with_one_line(
    sasl_broker: str, tmp_path: Path
) -> None:
    """The SASL exchange really runs against Tansu: credentials it does not know end
    ``relay serve`` with one line naming the settings (a working SCRAM user could not be made
    here: see the README's Kafka security section)."""
    kafka = (
        f'bootstrap_servers: "{sasl_broker}", security_protocol: SASL_PLAINTEXT, '
        "sasl_mechanism: SCRAM-SHA-256, sasl_plain_username: relay, "
        'sasl_plain_password: "${KAFKA_PASSWORD}"'
    )
    os.environ["KAFKA_PASSWORD"] = "not-a-password-the-broker-knows"
    try:
        status, stderr, took = _serve(
            _config_text(kafka, tmp_path, _topics()) + "logging: {format: json}\n", tmp_path
        )
    finally:
        del os.environ["KAFKA_PASSWORD"]
    assert status != 0
    _assert_one_clear_line(
        stderr, "SASL SCRAM-SHA-256", "did not accept relay's credentials", "sasl_plain_password"
    )
    assert "not-a-password-the-broker-knows" not in stderr
    assert took < 30


async def _refused(kafka: str, tmp_path: Path) -> str:
    """What the spooled Kafka bus refuses to start with (it must not spool instead)."""
    config = make_config(_config_text(kafka, tmp_path, _topics()))
    bus = open_bus(config)
    with pytest.raises(BusRefused) as caught:
        await bus.start()
    await bus.close()
    return str(caught.value)


@pytest.mark.parametrize(
    ("mechanism", "says"),
    [
        ("SCRAM-SHA-512", "did not accept relay's credentials"),
        ("PLAIN", "closed the connection during authentication"),  # Tansu offers no PLAIN
    ],
)
async def test_other_mechanisms_are_refused_too(
    sasl_broker: str, tmp_path: Path, mechanism: str, says: str
) -> None:
    message = await _refused(
        f'bootstrap_servers: "{sasl_broker}", security_protocol: SASL_PLAINTEXT, '
        f"sasl_mechanism: {mechanism}, sasl_plain_username: relay, sasl_plain_password: nope",
        tmp_path,
    )
    assert message.startswith(f"SASL {mechanism}: ") and says in message


async def test_sasl_against_a_broker_without_sasl_is_refused(
    broker: Broker, tmp_path: Path
) -> None:
    message = await _refused(
        f'bootstrap_servers: "{broker.bootstrap}", security_protocol: SASL_PLAINTEXT, '
        "sasl_mechanism: SCRAM-SHA-256, sasl_plain_username: relay, sasl_plain_password: nope",
        tmp_path,
    )
    assert message.startswith("SASL SCRAM-SHA-256: ")
    assert "does not offer this mechanism (check kafka.sasl_mechanism" in message


@needs_stunnel
async def test_sasl_over_tls_runs_the_exchange_inside_tls(tmp_path: Path) -> None:
    with tls_broker(_mkdir(tmp_path / "pki"), authentication=True) as tls:
        message = await _refused(
            f'bootstrap_servers: "{tls.bootstrap}", security_protocol: SASL_SSL, '
            f'ssl_cafile: "{tls.pki.ca}", sasl_mechanism: SCRAM-SHA-512, '
            "sasl_plain_username: relay, sasl_plain_password: nope",
            tmp_path,
        )
    assert message.startswith("SASL SCRAM-SHA-512: ")
    assert "did not accept relay's credentials" in message


@needs_stunnel
async def test_the_spool_drains_to_kafka_over_tls(tls: TlsBroker, tmp_path: Path) -> None:
    """Kafka silent behind TLS: requests are spooled; once it answers, the drainer's own
    producer forwards them through TLS too."""
    topics = _topics()
    kafka = (
        f'bootstrap_servers: "{tls.bootstrap}", security_protocol: SSL, '
        f'ssl_cafile: "{tls.pki.ca}", spool_after: 300ms, request_timeout_ms: 3000'
    )
    config = make_config(_config_text(kafka, tmp_path, topics).replace(", spool_after: 5s", ""))
    bodies = [
        json.dumps({"event": "conversation_created", "id": n, "account_id": 1}).encode()
        for n in range(5)
    ]
    async with relay_client(config) as client:

        async def post(body: bytes) -> int:
            response = await client.post(
                f"/v1/hooks/nexloo?token={TOKEN}",
                data=body,
                headers={"Content-Type": "application/json"},
            )
            return response.status

        async def mode() -> str:
            return str((await (await client.get("/readyz")).json())["mode"])

        assert await post(bodies[0]) == 202
        tls.broker.send_signal(signal.SIGSTOP)
        try:
            assert [await post(body) for body in bodies[1:]] == [202] * 4
            assert await mode() == "spooling"
        finally:
            tls.broker.send_signal(signal.SIGCONT)
        async with asyncio.timeout(30):
            while True:
                if await mode() == "direct":  # the spool is drained
                    break
                await asyncio.sleep(0.1)
    assert config.kafka is not None
    consumer = AIOKafkaConsumer(
        topics["raw"], **client_options(config.kafka), group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    got: list[bytes] = []
    try:
        async with asyncio.timeout(15):
            while len(set(got)) < len(bodies):
                batch = await consumer.getmany(timeout_ms=200)
                got += [m.value for messages in batch.values() for m in messages]
    finally:
        await consumer.stop()
    assert set(got) == set(bodies)


@needs_stunnel
async def test_mutual_tls_presents_the_client_certificate(tmp_path: Path) -> None:
    """A broker that requires a client certificate: relay's ssl_certfile/ssl_keyfile get it
    in; without them, relay is refused (stops, does not spool) with a line naming them."""
    from relay.bus import Record
    from relay.bus.kafka import KafkaBus

    with tls_broker(_mkdir(tmp_path / "pki"), client_certificates=True) as tls:
        common = {
            "bootstrap_servers": tls.bootstrap,
            "idempotence": False,
            "security_protocol": "SSL",
            "ssl_cafile": str(tls.pki.ca),
            "request_timeout_ms": 3000,
        }
        bus = KafkaBus(
            Kafka(
                **common,
                ssl_certfile=str(tls.pki.client_cert),
                ssl_keyfile=str(tls.pki.client_key),
            )
        )
        await bus.start()
        try:
            await bus.publish([Record(topic=unique("mtls"), value=b"{}")])
        finally:
            await bus.close()

        anonymous = KafkaBus(Kafka(**common))
        with pytest.raises(BusRefused) as caught:
            async with asyncio.timeout(20):
                await anonymous.start()
    assert str(caught.value).startswith(f"TLS: {tls.bootstrap} ended the connection: ")
    assert "certificate required" in str(caught.value)
    assert "kafka.ssl_certfile" in str(caught.value)


@needs_stunnel
async def test_relay_tail_names_a_refused_certificate(
    tls: TlsBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from relay.cli import main

    path = tmp_path / "relay.yaml"
    kafka = (
        f'bootstrap_servers: "{tls.bootstrap}", security_protocol: SSL, '
        f'ssl_cafile: "{tls.pki.other_ca}"'
    )
    path.write_text(_config_text(kafka, tmp_path, _topics()))
    assert await asyncio.to_thread(main, ["tail", "--config", str(path), "--limit", "1"]) != 0
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("relay: TLS: ") and "kafka.ssl_cafile" in last


async def _listener(answer: bytes) -> asyncio.Server:
    """A loopback port that is not Kafka: it writes ``answer`` to each connection and closes."""

    async def reply(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(answer)
        await writer.drain()
        writer.close()

    return await asyncio.start_server(reply, "127.0.0.1", 0)


def _port(server: asyncio.Server) -> str:
    return f"127.0.0.1:{server.sockets[0].getsockname()[1]}"


@needs_stunnel
async def test_each_refusal_is_the_whole_line_naming_the_setting(
    tls: TlsBroker, broker: Broker, tmp_path: Path
) -> None:
    """``refusal`` in process, each answer whole (relay prints it as it is); the bootstrap
    servers are tried in turn, one that is away skipped."""
    away = f"127.0.0.1:{free_port()}"
    http = await _listener(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    hangs_up = await _listener(b"")
    scram = {"sasl_plain_username": "relay", "sasl_plain_password": "nope"}
    try:
        with (
            tls_broker(_mkdir(tmp_path / "mtls"), client_certificates=True) as mtls,
            tls_broker(_mkdir(tmp_path / "sasl"), authentication=True) as sasl,
        ):
            cases = [
                (
                    Kafka(
                        bootstrap_servers=f"{away},{tls.bootstrap}",
                        security_protocol="SSL",
                        ssl_cafile=str(tls.pki.other_ca),
                    ),
                    f"TLS: {tls.bootstrap} presented a certificate that does not verify: "
                    "unable to get local issuer certificate "
                    "(check kafka.ssl_cafile and kafka.ssl_check_hostname)",
                ),
                (
                    Kafka(
                        bootstrap_servers=_port(http),
                        security_protocol="SSL",
                        ssl_cafile=str(tls.pki.ca),
                    ),
                    f"TLS: the handshake with {_port(http)} failed: WRONG_VERSION_NUMBER "
                    "(is it a TLS listener? check kafka.security_protocol and the port)",
                ),
                (
                    Kafka(
                        bootstrap_servers=mtls.bootstrap,
                        security_protocol="SSL",
                        ssl_cafile=str(mtls.pki.ca),
                    ),
                    f"TLS: {mtls.bootstrap} ended the connection: tlsv13 alert certificate "
                    "required (does it require a client certificate? set kafka.ssl_certfile "
                    "and kafka.ssl_keyfile)",
                ),
                (
                    Kafka(
                        bootstrap_servers=broker.bootstrap,
                        security_protocol="SASL_PLAINTEXT",
                        sasl_mechanism="SCRAM-SHA-256",
                        **scram,
                    ),
                    f"SASL SCRAM-SHA-256: {broker.bootstrap} does not offer this mechanism "
                    "(check kafka.sasl_mechanism and kafka.security_protocol)",
                ),
                (
                    Kafka(
                        bootstrap_servers=sasl.bootstrap,
                        security_protocol="SASL_SSL",
                        ssl_cafile=str(sasl.pki.ca),
                        sasl_mechanism="PLAIN",
                        **scram,
                    ),
                    f"SASL PLAIN: {sasl.bootstrap} closed the connection during authentication "
                    "(does it offer this mechanism? check kafka.sasl_mechanism, "
                    "sasl_plain_username and sasl_plain_password)",
                ),
                (
                    Kafka(
                        bootstrap_servers=sasl.bootstrap,
                        security_protocol="SASL_SSL",
                        ssl_cafile=str(sasl.pki.ca),
                        sasl_mechanism="SCRAM-SHA-512",
                        **scram,
                    ),
                    f"SASL SCRAM-SHA-512: {sasl.bootstrap} did not accept relay's credentials "
                    "(KeyError: 'v'; check sasl_plain_username and sasl_plain_password)",
                ),
                # Away, or not Kafka at all: not a refusal (the spool covers it), SASL or not.
                (Kafka(bootstrap_servers=away), None),
                (
                    Kafka(
                        bootstrap_servers=_port(hangs_up),
                        security_protocol="SASL_PLAINTEXT",
                        sasl_mechanism="SCRAM-SHA-256",
                        **scram,
                    ),
                    None,
                ),
            ]
            for config, expected in cases:
                assert await refusal(config, within=10) == expected
    finally:
        http.close()
        hangs_up.close()
