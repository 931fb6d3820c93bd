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

from relay.config import Kafka, no_key_password


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
        context.load_cert_chain(
            kafka.ssl_certfile, kafka.ssl_keyfile, password=kafka.ssl_password or no_key_password
        )
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


async def _tls_alert(host: str, port: int, context: ssl.SSLContext) -> str | None:
    """The TLS alert a server sends right after the handshake (TLS 1.3 refuses a missing or
    unknown client certificate that way), or None if it sends none."""
    try:
        async with asyncio.timeout(_ALERT_WAIT):
            reader, writer = await asyncio.open_connection(host, port, ssl=context)
    except (OSError, TimeoutError):
        return None
    try:
        async with asyncio.timeout(_ALERT_WAIT):
            await reader.read(1)
    except ssl.SSLError as exc:
        return str(exc.reason or exc).replace("_", " ").lower()
    except (OSError, TimeoutError):
        return None
    finally:
        writer.close()
    return None


_ALERT_WAIT = 2.0


async def _answers_without_sasl(
    host: str, port: int, options: dict[str, Any], within: float
) -> bool:
    """Whether the broker answers a connection that skips SASL (its API versions)."""
    plain = {k: v for k, v in options.items() if not k.startswith("sasl_")}
    plain["security_protocol"] = (
        "SSL" if options["security_protocol"] == "SASL_SSL" else "PLAINTEXT"
    )
    try:
        async with asyncio.timeout(within):
            conn = await create_conn(host, port, request_timeout_ms=within * 1000, **plain)
    except Exception:
        return False
    conn.close()
    return True


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
        except UnsupportedSaslMechanismError:
            return (
                f"SASL {kafka.sasl_mechanism}: {server} does not offer this mechanism "
                "(check kafka.sasl_mechanism and kafka.security_protocol)"
            )
        except _SASL_REFUSED as exc:
            return (
                f"SASL {kafka.sasl_mechanism}: {server} refused relay's login: {exc} "
                "(check kafka.sasl_mechanism, sasl_plain_username, sasl_plain_password)"
            )
        except (OSError, TimeoutError, KafkaError):
            context = options.get("ssl_context")
            if context is not None and (alert := await _tls_alert(host, port, context)):
                return (
                    f"TLS: {server} ended the connection: {alert} (does it require a client "
                    "certificate? set kafka.ssl_certfile and kafka.ssl_keyfile)"
                )
            if sasl and await _answers_without_sasl(host, port, options, within):
                # It talks Kafka until relay authenticates, then hangs up: a refusal (some
                # brokers close the connection on a mechanism they do not offer).
                return (
                    f"SASL {kafka.sasl_mechanism}: {server} closed the connection during "
                    "authentication (does it offer this mechanism? check kafka.sasl_mechanism, "
                    "sasl_plain_username and sasl_plain_password)"
                )
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
