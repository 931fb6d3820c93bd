"""The ``kafka:`` security settings: validated at load, and every one reaches aiokafka."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from relay.bus.kafka.security import _host_port, client_options
from relay.config import ConfigError, Kafka, parse
from tests.pki import OPENSSL, make_pki


def kafka(text: str, **env: str) -> Kafka:
    config = parse(f"kafka: {{bootstrap_servers: 'k1:9093,k2:9093', {text}}}", env=env)
    assert config.kafka is not None
    return config.kafka


def test_plaintext_is_the_default_and_has_no_security_options() -> None:
    options = client_options(kafka("client_id: relay-a"))
    assert options == {
        "bootstrap_servers": ["k1:9093", "k2:9093"],
        "client_id": "relay-a",
        "security_protocol": "PLAINTEXT",
    }


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_sasl_ssl_settings_reach_the_producer_and_the_consumer(mechanism: str) -> None:
    config = kafka(
        f"security_protocol: SASL_SSL, sasl_mechanism: {mechanism}, "
        "sasl_plain_username: '${KAFKA_USER}', sasl_plain_password: '${KAFKA_PASSWORD}'",
        KAFKA_USER="relay-prod",
        KAFKA_PASSWORD="s3cret-from-env",
    )
    producer = AIOKafkaProducer(**client_options(config))
    consumer = AIOKafkaConsumer(**client_options(config), group_id="g")
    for inner in (producer.client, consumer._client):
        assert inner._bootstrap_servers == ["k1:9093", "k2:9093"]
        assert inner._security_protocol == "SASL_SSL"
        assert inner._sasl_mechanism == mechanism
        assert inner._sasl_plain_username == "relay-prod"
        assert inner._sasl_plain_password == "s3cret-from-env"
        context = inner._ssl_context
        assert isinstance(context, ssl.SSLContext)
        assert context.check_hostname is True
        assert context.verify_mode == ssl.CERT_REQUIRED
    await producer.stop()
    await consumer.stop()


async def test_oauthbearer_sends_the_configured_token() -> None:
    config = kafka(
        "security_protocol: SASL_SSL, sasl_mechanism: OAUTHBEARER, sasl_oauth_token: tok-123"
    )
    options = client_options(config)
    assert options["sasl_mechanism"] == "OAUTHBEARER"
    assert await options["sasl_oauth_token_provider"].token() == "tok-123"
    assert "sasl_plain_password" not in options


@pytest.mark.skipif(OPENSSL is None, reason="needs openssl to make a CA")
def test_hostname_check_can_be_turned_off_but_verification_stays(tmp_path: Path) -> None:
    ca = make_pki(tmp_path).ca
    context = client_options(
        kafka(f"security_protocol: SSL, ssl_cafile: '{ca}', ssl_check_hostname: false")
    )["ssl_context"]
    assert context.check_hostname is False
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert len(context.get_ca_certs()) == 1  # the given CA only, not the system's


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ssl_cafile: /x.pem", "kafka.ssl_cafile: set, but kafka.security_protocol is PLAINTEXT"),
        (
            "security_protocol: SSL, ssl_cafile: /nonexistent/ca.pem",
            "kafka.ssl_cafile: cannot read",
        ),
        ("security_protocol: SASL_SSL", "kafka.sasl_mechanism: required with SASL_SSL"),
        (
            "security_protocol: SASL_SSL, sasl_mechanism: SCRAM-SHA-512",
            "kafka.sasl_plain_username: required with sasl_mechanism SCRAM-SHA-512",
        ),
        (
            "security_protocol: SASL_SSL, sasl_mechanism: PLAIN, sasl_plain_username: u",
            "kafka.sasl_plain_password: required",
        ),
        (
            "security_protocol: SASL_SSL, sasl_mechanism: OAUTHBEARER",
            "kafka.sasl_oauth_token: required",
        ),
        ("sasl_plain_username: u", "kafka.sasl_plain_username: set, but"),
        ("security_protocol: TLS", "kafka.security_protocol"),
        ("security_protocol: SASL_SSL, sasl_mechanism: GSSAPI", "kafka.sasl_mechanism"),
    ],
)
def test_contradictions_are_one_line_with_the_path(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        kafka(text)
    assert message in str(caught.value)


@pytest.mark.skipif(OPENSSL is None, reason="needs openssl to make keys")
def test_tls_files_that_do_not_load_are_one_line_at_load(tmp_path: Path) -> None:
    import subprocess

    pki = make_pki(tmp_path)
    encrypted = tmp_path / "encrypted.key"
    subprocess.run(
        [str(OPENSSL), "pkey", "-in", str(pki.client_key), "-aes-128-cbc", "-passout",
         "pass:hunter2", "-out", str(encrypted)],
        check=True,
    )  # fmt: skip
    base = f"security_protocol: SSL, ssl_certfile: '{pki.client_cert}', ssl_keyfile: '{encrypted}'"
    with pytest.raises(ConfigError, match=r"^kafka.ssl_keyfile: the key is encrypted; set"):
        kafka(base)
    with pytest.raises(ConfigError, match=r"^kafka.ssl_certfile: the certificate and key do not"):
        kafka(base + ", ssl_password: wrong")
    context = client_options(
        kafka(base + ", ssl_password: '${KEY_PASSWORD}'", KEY_PASSWORD="hunter2")
    )
    assert isinstance(context["ssl_context"], ssl.SSLContext)
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"^kafka.ssl_cafile: not a PEM CA bundle"):
        kafka(f"security_protocol: SSL, ssl_cafile: '{not_pem}'")


def test_relay_check_shows_how_it_reaches_kafka_without_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from relay.cli import main

    path = tmp_path / "relay.yaml"
    path.write_text(
        "kafka: {bootstrap_servers: 'k1:9093', security_protocol: SASL_SSL, "
        "sasl_mechanism: SCRAM-SHA-512, sasl_plain_username: relay-prod, "
        "sasl_plain_password: very-secret-password}\n"
    )
    assert main(["check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "kafka k1:9093 SASL_SSL, SCRAM-SHA-512 as relay-prod, system CAs" in out
    assert "very-secret-password" not in out


def test_a_bootstrap_server_splits_at_its_last_colon_with_kafkas_port_by_default() -> None:
    assert _host_port("k1:9093") == ("k1", 9093)
    assert _host_port("[::1]:9094") == ("::1", 9094)  # IPv6 in brackets
    assert _host_port("BOX:9093") == ("BOX", 9093)  # only brackets are stripped
    assert _host_port("kafka.internal") == ("kafka.internal", 9092)
    with pytest.raises(ValueError):
        _host_port("k1:not-a-port")
