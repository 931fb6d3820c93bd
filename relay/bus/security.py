"""Kafka connection options: one place that turns the ``kafka:`` section into aiokafka's.

Every client relay makes — the producer, the spool drainer's producer, the delivery
consumers, replay and tail — is built from :func:`client_options`, so TLS and SASL
settings cannot reach one client and miss another.

When a client cannot connect, :func:`refusal` tells a broker that is away (spool and
retry) from one that refuses relay's settings (a certificate that does not verify, a
SASL mechanism or password the broker rejects): the second will never heal by waiting,
so relay stops with one line naming the setting instead of spooling forever.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

from aiokafka.abc import AbstractTokenProvider
from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    IllegalSaslStateError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)

from relay.config import Kafka


class StaticToken(AbstractTokenProvider):  # type: ignore[misc]
    """OAUTHBEARER with a token from the configuration (no refresh)."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def token(self) -> str:
        return self._token


def ssl_context(kafka: Kafka) -> ssl.SSLContext:
    """Verifies the brokers against ``ssl_cafile`` (or the system's CAs); presents a client
    certificate when one is configured."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=kafka.ssl_cafile)
    context.check_hostname = kafka.ssl_check_hostname
    context.verify_mode = ssl.CERT_REQUIRED  # a hostname check off never means "trust anyone"
    if kafka.ssl_certfile is not None:
        context.load_cert_chain(kafka.ssl_certfile, kafka.ssl_keyfile)
    return context


def client_options(kafka: Kafka) -> dict[str, Any]:
    """Keyword arguments every aiokafka client of relay's takes: servers, id, security."""
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.servers,
        "client_id": kafka.client_id,
        "security_protocol": kafka.security_protocol,
    }
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl_context(kafka)
    if kafka.security_protocol.startswith("SASL_"):
        options["sasl_mechanism"] = kafka.sasl_mechanism
        if kafka.sasl_mechanism == "OAUTHBEARER":
            assert kafka.sasl_oauth_token is not None  # checked by the configuration
            options["sasl_oauth_token_provider"] = StaticToken(kafka.sasl_oauth_token)
        else:
            options["sasl_plain_username"] = kafka.sasl_plain_username
            options["sasl_plain_password"] = kafka.sasl_plain_password
    return options


_SASL_REFUSED = (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
    IllegalSaslStateError,
)


def _host_port(server: str) -> tuple[str, int]:
    host, _, port = server.rpartition(":")
    if not host:
        return server, 9092
    return host.strip("[]"), int(port)


async def refusal(kafka: Kafka, within: float = 10.0) -> str | None:
    """Why the brokers refuse relay's settings, or None if they are merely unreachable.

    Connects to each bootstrap server once as the clients would (TLS handshake, SASL
    exchange) and classifies what went wrong.
    """
    options = client_options(kafka)
    options.pop("bootstrap_servers")
    sasl = kafka.security_protocol.startswith("SASL_")
    for server in kafka.servers:
        try:
            host, port = _host_port(server)
        except ValueError:
            return f"kafka.bootstrap_servers: {server!r} is not host:port"
        try:
            async with asyncio.timeout(within):
                conn = await create_conn(host, port, request_timeout_ms=within * 1000, **options)
        except ssl.SSLCertVerificationError as exc:
            return (
                f"TLS: {server} presented a certificate that does not verify: "
                f"{exc.verify_message or exc.reason} "
                "(check kafka.ssl_cafile and kafka.ssl_check_hostname)"
            )
        except ssl.SSLError as exc:
            return (
                f"TLS: the handshake with {server} failed: {exc.reason or exc} "
                "(is it a TLS listener? check kafka.security_protocol and the port)"
            )
        except _SASL_REFUSED as exc:
            return (
                f"SASL {kafka.sasl_mechanism}: {server} refused relay: {exc} "
                "(check kafka.sasl_mechanism, sasl_plain_username, sasl_plain_password)"
            )
        except (OSError, TimeoutError, KafkaError):
            continue  # away, not refusing: the spool covers it
        except Exception as exc:
            if not sasl:
                raise
            # aiokafka's SCRAM client fails with a bare KeyError/ValueError when the broker
            # answers the exchange with an error (unknown user, wrong password).
            return (
                f"SASL {kafka.sasl_mechanism}: {server} did not accept relay's credentials "
                f"({type(exc).__name__}: {exc}; check sasl_plain_username and "
                "sasl_plain_password)"
            )
        else:
            conn.close()
    return None
