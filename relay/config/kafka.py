"""The ``kafka:`` section: the brokers, the producer and consumer knobs, and security.

Security uses aiokafka's own names (relay.bus.kafka.security turns them into client options).
Settings that contradict the protocol, and TLS files that cannot be read or do not load,
fail at load, each as one line naming the field.
"""

from __future__ import annotations

import ssl
from typing import Literal

from relay.config.errors import ConfigError
from relay.config.fields import Invalid, NotNegative, Positive, Section
from relay.units import PositiveSeconds, positive_seconds


class Kafka(Section, frozen=True, kw_only=True):
    bootstrap_servers: str | list[str]
    client_id: str = "relay"
    idempotence: bool = True
    compression: Literal["gzip", "snappy", "lz4", "zstd"] | None = None
    cloudevents_mode: Literal["structured", "binary"] = "structured"
    """structured: the CloudEvent is the record value; binary: data is, the rest ce_* headers."""
    linger_ms: NotNegative = 2
    request_timeout_ms: Positive = 30_000
    session_timeout_ms: Positive = 10_000
    """Delivery consumer groups: how long a silent member keeps its partitions."""
    heartbeat_interval_ms: Positive = 3_000
    spool_after: PositiveSeconds = positive_seconds("5s")
    """Kafka silent this long: accept into the on-disk spool instead, drain it later."""
    spool_max_bytes: Positive = 1024 * 1024 * 1024
    """Past this much spooled data, ingress answers 503 with Retry-After."""
    max_record_bytes: Positive = 1_000_000
    """The largest record relay sends (keep it under the broker's message.max.bytes);
    a request that would need a larger one is answered 413."""
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None = None
    """Required with SASL_PLAINTEXT and SASL_SSL."""
    sasl_plain_username: str | None = None
    sasl_plain_password: str | None = None
    """PLAIN and SCRAM credentials (from ``${VAR}``, never written into the file)."""
    sasl_oauth_token: str | None = None
    """OAUTHBEARER: a bearer token the broker accepts, sent as it is (no refresh)."""
    ssl_cafile: str | None = None
    """CA bundle that signs the brokers' certificates (default: the system's CAs)."""
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    """Client certificate and key, for brokers that authenticate clients by TLS (mTLS)."""
    ssl_check_hostname: bool = True
    ssl_password: str | None = None
    """The password of an encrypted ``ssl_keyfile``."""

    def __post_init__(self) -> None:
        if not self.servers:
            raise Invalid("bootstrap_servers", "no servers given")
        _check_security(self)

    @property
    def servers(self) -> list[str]:
        if isinstance(self.bootstrap_servers, str):
            return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]
        return list(self.bootstrap_servers)


def no_key_password() -> str:
    """An encrypted key without ``ssl_password``: fail, rather than let OpenSSL prompt."""
    raise ConfigError("kafka.ssl_keyfile: the key is encrypted; set kafka.ssl_password")


def _check_tls_files(kafka: Kafka) -> None:
    """The CA bundle and client certificate load as TLS will load them, or one line says why."""
    try:
        context = ssl.create_default_context(cafile=kafka.ssl_cafile)
    except (ssl.SSLError, ValueError) as exc:
        raise Invalid("ssl_cafile", f"not a PEM CA bundle: {exc}") from None
    if kafka.ssl_certfile is None:
        return
    try:
        context.load_cert_chain(
            kafka.ssl_certfile, kafka.ssl_keyfile, password=kafka.ssl_password or no_key_password
        )
    except ssl.SSLError as exc:
        raise Invalid(
            "ssl_certfile",
            f"the certificate and key do not load: {exc.reason or exc} "
            "(a PEM certificate, its key, and kafka.ssl_password if the key is encrypted)",
        ) from None


def _check_security(kafka: Kafka) -> None:
    protocol = kafka.security_protocol
    uses_tls = protocol in ("SSL", "SASL_SSL")
    uses_sasl = protocol.startswith("SASL_")
    for field in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        path = getattr(kafka, field)
        if path is None:
            continue
        if not uses_tls:
            raise Invalid(
                field, f"set, but kafka.security_protocol is {protocol} (use SSL or SASL_SSL)"
            )
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise Invalid(field, f"cannot read {path}: {exc.strerror or exc}") from None
    if kafka.ssl_keyfile is not None and kafka.ssl_certfile is None:
        raise Invalid("ssl_keyfile", "set without kafka.ssl_certfile")
    if uses_tls:
        _check_tls_files(kafka)
    sasl_fields = ("sasl_mechanism", "sasl_plain_username", "sasl_plain_password")
    if not uses_sasl:
        for field in (*sasl_fields, "sasl_oauth_token"):
            if getattr(kafka, field) is not None:
                raise Invalid(
                    field,
                    f"set, but kafka.security_protocol is {protocol} "
                    "(use SASL_SSL or SASL_PLAINTEXT)",
                )
        return
    mechanism = kafka.sasl_mechanism
    if mechanism is None:
        raise Invalid(
            "sasl_mechanism",
            f"required with {protocol} (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER)",
        )
    if mechanism == "OAUTHBEARER":
        if not kafka.sasl_oauth_token:
            raise Invalid("sasl_oauth_token", "required with sasl_mechanism OAUTHBEARER")
        return
    for field in ("sasl_plain_username", "sasl_plain_password"):
        if not getattr(kafka, field):
            raise Invalid(
                field,
                f"required with sasl_mechanism {mechanism} (is its environment variable set?)",
            )
