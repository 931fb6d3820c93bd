"""Configuration: YAML → environment interpolation → msgspec Structs, errors with paths.

A mistake is reported as one line naming where it is in the file, e.g.
``routes[1].topic: expected str, got int``.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import ipaddress
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec
import yaml
from msgspec import inspect

from relay.events import ProviderName
from relay.providers import PROVIDERS
from relay.units import PerSecond, Seconds, dec_hook, seconds
from relay.units import per_second as per_second  # re-exported: callers parse rates here

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


class ConfigError(Exception):
    """A configuration mistake, already phrased for the operator."""


class Section(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    pass


class Listen(Section, frozen=True, kw_only=True):
    host: str = "0.0.0.0"
    port: int = 8080


class Kafka(Section, frozen=True, kw_only=True):
    bootstrap_servers: str | list[str]
    client_id: str = "relay"
    idempotence: bool = True
    compression: Literal["gzip", "snappy", "lz4", "zstd"] | None = None
    cloudevents_mode: Literal["structured", "binary"] = "structured"
    """structured: the CloudEvent is the record value; binary: data is, the rest ce_* headers."""
    linger_ms: int = 2
    request_timeout_ms: int = 30_000
    session_timeout_ms: int = 10_000
    """Delivery consumer groups: how long a silent member keeps its partitions."""
    heartbeat_interval_ms: int = 3_000
    spool_after: Seconds = seconds("5s")
    """Kafka silent this long: accept into the on-disk spool instead, drain it later."""
    spool_max_bytes: int = 1024 * 1024 * 1024
    """Past this much spooled data, ingress answers 503 with Retry-After."""
    max_record_bytes: int = 1_000_000
    """The largest record relay sends (keep it under the broker's message.max.bytes);
    a request that would need a larger one is answered 413."""
    # Security, with aiokafka's own names (relay.bus.security turns them into client options).
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

    @property
    def servers(self) -> list[str]:
        if isinstance(self.bootstrap_servers, str):
            return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]
        return list(self.bootstrap_servers)


class Source(Section, frozen=True, kw_only=True):
    provider: ProviderName
    tokens: list[str] = []
    signing_secret: str | None = None
    signature_tolerance: Seconds = seconds("5m")
    """How far a signed Chatwoot timestamp may be from now (replay protection)."""
    allow_cidrs: list[str] = []
    rate_limit: PerSecond | None = None
    """Requests accepted from this source per second (``100/s``, ``6000/m``); past it, 429."""
    max_in_flight: int | None = None
    """This source's share of ``limits.max_in_flight``: past it, 503 for this source only, so
    its slow clients cannot crowd the others out. Default: a quarter of the limit (all of it
    when there is only one source)."""

    def in_flight_share(self, limits: Limits, sources: int) -> int:
        if self.max_in_flight is not None:
            return self.max_in_flight
        if sources <= 1:
            return limits.max_in_flight
        return max(1, limits.max_in_flight // 4)


class Topics(Section, frozen=True, kw_only=True):
    events: str = "chat.events"
    raw: str = "relay.raw"
    deadletter: str = "relay.deadletter"
    attempts: str = "relay.attempts"
    """The attempt log: one record per delivery attempt, key = event id."""


Patterns = str | list[str]


class Match(Section, frozen=True, kw_only=True):
    type: Patterns | None = None
    source: Patterns | None = None
    provider: Patterns | None = None
    where: dict[str, Any] | None = None


class Route(Section, frozen=True, kw_only=True):
    name: str
    match: Match = Match()
    topic: str


class Limits(Section, frozen=True, kw_only=True):
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    body_timeout: Seconds = seconds("30s")
    """A body that takes longer than this to arrive (slowloris) is answered 408."""
    max_in_flight: int = 4096
    """Webhook requests in progress at once; past it, 503 with Retry-After (backpressure)."""
    max_events_per_body: Annotated[int, msgspec.Meta(ge=1)] = 1000
    """A body that would make more canonical events is dead-lettered (too_many_events)."""
    header_timeout: Seconds = seconds("10s")
    """A connection that sends no complete request head for this long is closed."""


class Dedupe(Section, frozen=True, kw_only=True):
    window: Seconds = seconds("10m")
    """A delivery retried within this window makes one event; 0 turns deduplication off."""
    max_entries: int = 100_000


class Admin(Section, frozen=True, kw_only=True):
    token: str | None = None
    """Bearer token for ``POST /admin/reload``; without one the admin endpoints are off."""
    listen: Listen | None = None
    """A listener of their own for ``/metrics`` and ``/admin/*`` (and the probes), which the
    hook listener then no longer serves: keep them off the public port."""


class Console(Section, frozen=True, kw_only=True):
    """The operator console and the admin API's index (on only with ``admin.token``)."""

    session_ttl: Seconds = seconds("8h")
    """How long a console login lasts."""
    index_max_events: Annotated[int, msgspec.Meta(ge=1000)] = 2_000_000
    """The index under data_dir keeps at most this many events (and the retention's worth)."""


class Metrics(Section, frozen=True, kw_only=True):
    token: str | None = None
    """Bearer token ``GET /metrics`` requires; without one it is open."""


class Logging(Section, frozen=True, kw_only=True):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class Retry(Section, frozen=True, kw_only=True):
    max_attempts: int = 12
    backoff: Literal["exponential"] = "exponential"
    initial: Seconds = seconds("1s")
    max: Seconds = seconds("1h")
    jitter: bool = True


class CircuitBreaker(Section, frozen=True, kw_only=True):
    """Opens when the endpoint fails as a whole; see relay.delivery.breaker for the rule."""

    window: Seconds = seconds("30s")
    """The failure rate is measured over this much recent time."""
    failure_rate: float = 0.9
    """Failed share of the attempts in the window that opens the circuit."""
    min_attempts: int = 10
    """Fewer attempts than this (in the window, or since the last success) never open it."""
    no_success_for: Seconds = seconds("15s")
    """Failing without one success this long (and min_attempts times) opens it."""
    cooldown: Seconds = seconds("5s")
    """How long an open circuit waits before probing; doubled after each failed probe."""
    cooldown_max: Seconds = seconds("5m")
    half_open_attempts: int = 3
    """Probe attempts let through at once when half-open; the first success closes it."""


class Subscriber(Section, frozen=True, kw_only=True):
    name: str
    url: str
    topics: str | list[str] | None = None
    """Topics read (default: the events topic)."""
    match: Match = Match()
    format: Literal["cloudevent", "data"] = "cloudevent"
    headers: dict[str, str] = {}
    secret: str | None = None
    secrets: list[str] = []
    timeout: Seconds = seconds("10s")
    retry: Retry = Retry()
    max_in_flight: int = 32
    rate_limit: PerSecond | None = None
    """``100/s``, ``6000/m`` or a number per second."""
    on_4xx: Literal["deadletter", "retry"] = "deadletter"
    circuit_breaker: CircuitBreaker = CircuitBreaker()
    start_from: Literal["latest", "earliest"] = "latest"
    """Where a subscriber that has never committed an offset starts reading."""

    def topic_list(self, default: str) -> list[str]:
        if self.topics is None:
            return [default]
        return [self.topics] if isinstance(self.topics, str) else list(self.topics)

    @property
    def all_secrets(self) -> list[str]:
        return [s for s in ([self.secret] if self.secret else []) + list(self.secrets) if s]


class Config(Section, frozen=True, kw_only=True):
    listen: Listen = Listen()
    data_dir: str = "./var"
    retention: Seconds = seconds("7d")
    """How long the embedded log keeps records (when it is the bus); 0 keeps them forever."""
    kafka: Kafka | None = None
    sources: dict[str, Source] = {}
    topics: Topics = Topics()
    routes: list[Route] = []
    subscribers: list[Subscriber] = []
    limits: Limits = Limits()
    logging: Logging = Logging()
    admin: Admin = Admin()
    console: Console = Console()
    metrics: Metrics = Metrics()
    dedupe: Dedupe = Dedupe()
    shutdown_grace: Seconds = seconds("20s")
    """On SIGTERM: how long in-flight requests and deliveries get before relay exits."""
    workers: Annotated[int, msgspec.Meta(ge=1)] | Literal["auto"] = 1
    """``relay serve`` processes sharing the listen port (``auto``: one per core); 1 is one
    process, no supervisor."""
    allow_insecure_defaults: bool = False
    """Listen beyond loopback even with short secrets or the shipped examples' values."""
    debug_errors: bool = False
    """Say why a hook was refused (unknown source, which credential) instead of one 401."""

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)


def webhook_secret(value: str) -> bytes:
    """A Standard Webhooks secret (``whsec_<base64>``) as the HMAC key bytes."""
    encoded = value[len("whsec_") :] if value.startswith("whsec_") else value
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            "expected a Standard Webhooks secret: whsec_<base64 of at least 16 bytes>"
        ) from None
    if len(key) < 16:
        raise ValueError("a webhook secret must hold at least 16 bytes (24 base64 characters)")
    return key


_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def interpolate(value: Any, env: Mapping[str, str], path: str = "") -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string; ``$$`` is a literal ``$``.

    Done after YAML parsing, so a variable's value can never change the file's structure.
    """
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"{path or '<root>'}: environment variable {name} is not set")

        return _VAR.sub(substitute, value)
    if isinstance(value, list):
        return [interpolate(item, env, _join(path, i)) for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {key: interpolate(item, env, _join(path, str(key))) for key, item in value.items()}
    return value


_MSGSPEC_PATH = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)


_FIELD_PROBLEM = re.compile(
    r"^Object (contains unknown|missing required) field `(?P<field>[^`]*)`$"
)


_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def _type_at(root: type, path: str) -> inspect.Type | None:
    """The type a msgspec error path (``.subscribers[0].retry``) points into, if known."""
    node: inspect.Type = inspect.type_info(root)
    for part in _PATH_PART.finditer(path):
        while isinstance(node, inspect.UnionType):
            members = [t for t in node.types if not isinstance(t, inspect.NoneType)]
            structured = [
                t for t in members if isinstance(t, inspect.StructType | inspect.ListType)
            ]
            node = (structured or members)[0]
        if part.group(1) is not None and isinstance(node, inspect.StructType):
            fields = {f.encode_name: f.type for f in node.fields}
            if part.group(1) not in fields:
                return None
            node = fields[part.group(1)]
        elif part.group(2) is not None and isinstance(node, inspect.ListType):
            node = node.item_type
        else:
            return None
    return node


def _hint(root: type, path: str, message: str, field: str | None) -> str:
    """'did you mean' for an unknown field, the allowed values for a bad enum value."""
    if field is not None and "unknown" in message:
        node = _type_at(root, path)
        if isinstance(node, inspect.StructType):
            names = [f.encode_name for f in node.fields]
            close = difflib.get_close_matches(field, names, n=1)
            if close:
                return f" (did you mean {close[0]!r}?)"
    elif message.startswith("Invalid enum value"):
        node = _type_at(root, path)
        if isinstance(node, inspect.UnionType):
            node = next((t for t in node.types if isinstance(t, inspect.LiteralType)), node)
        if isinstance(node, inspect.LiteralType):
            return f" (expected one of: {', '.join(str(v) for v in node.values)})"
    return ""


def _validation_message(exc: msgspec.ValidationError, prefix: str = "", root: type = Config) -> str:
    match = _MSGSPEC_PATH.match(str(exc))
    assert match is not None
    message = match.group("message")
    located = match.group("path") or ""
    path = prefix + located
    field = _FIELD_PROBLEM.match(message)
    hint = _hint(root, located, message, field.group("field") if field else None)
    if field is not None:
        path += "." + field.group("field")
        message = "unknown field" if "unknown" in message else "required field is missing"
    else:
        message = (message[:1].lower() + message[1:]).replace("`", "")
        # YAML words, not JSON's: `tokens: abc` is "expected a list, got str"
        message = message.replace("expected array", "expected a list")
        message = message.replace("expected object", "expected a mapping")
    path = path.lstrip(".")
    return f"{path}: {message}{hint}" if path else f"{message}{hint}"


def _convert(data: dict[str, Any]) -> Config:
    # msgspec's paths do not name mapping keys, so sources are checked one by one first.
    sources = data.get("sources")
    if isinstance(sources, dict):
        for name, source in sources.items():
            try:
                msgspec.convert(source, Source, strict=False, dec_hook=dec_hook)
            except msgspec.ValidationError as exc:
                raise ConfigError(_validation_message(exc, f".sources.{name}", Source)) from None
    try:
        return msgspec.convert(data, Config, str_keys=True, strict=False, dec_hook=dec_hook)
    except msgspec.ValidationError as exc:
        raise ConfigError(_validation_message(exc)) from None


def _check(config: Config) -> None:
    """Rules the types alone cannot say."""
    if not 0 < config.listen.port < 65536:
        raise ConfigError(f"listen.port: {config.listen.port} is not a TCP port")
    admin = config.admin.listen
    if admin is not None:
        if not 0 < admin.port < 65536:
            raise ConfigError(f"admin.listen.port: {admin.port} is not a TCP port")
        if admin.port == config.listen.port:
            raise ConfigError("admin.listen.port: the same port as listen.port; pick another")
    if config.limits.max_body_bytes <= 0:
        raise ConfigError("limits.max_body_bytes: must be positive")
    if config.limits.max_in_flight < 1:
        raise ConfigError("limits.max_in_flight: must be at least 1")
    if config.limits.header_timeout <= 0:
        raise ConfigError("limits.header_timeout: must be positive")
    if config.dedupe.max_entries < 1:
        raise ConfigError("dedupe.max_entries: must be at least 1")
    if config.limits.body_timeout <= 0:
        raise ConfigError("limits.body_timeout: must be positive")
    if config.kafka is not None:
        if not config.kafka.servers:
            raise ConfigError("kafka.bootstrap_servers: no servers given")
        if config.kafka.spool_after <= 0:
            raise ConfigError("kafka.spool_after: must be positive")
        for field in (
            "spool_max_bytes",
            "max_record_bytes",
            "request_timeout_ms",
            "session_timeout_ms",
            "heartbeat_interval_ms",
        ):
            if getattr(config.kafka, field) <= 0:
                raise ConfigError(f"kafka.{field}: must be positive")
        if config.kafka.linger_ms < 0:
            raise ConfigError("kafka.linger_ms: cannot be negative")
        _check_kafka_security(config.kafka)
    for name, source in config.sources.items():
        where = f"sources.{name}"
        if not _SOURCE_NAME.match(name):
            raise ConfigError(f"{where}: a source name is letters, digits, '_', '.', '-'")
        for i, token in enumerate(source.tokens):
            if not token.strip():
                raise ConfigError(
                    f"{where}.tokens[{i}]: empty token (is its environment variable set?)"
                )
        if source.signing_secret is not None and PROVIDERS[source.provider].verify is None:
            signed = ", ".join(name for name, p in PROVIDERS.items() if p.verify)
            raise ConfigError(f"{where}.signing_secret: only {signed} sources sign webhooks")
        if source.max_in_flight is not None and not (
            1 <= source.max_in_flight <= config.limits.max_in_flight
        ):
            raise ConfigError(
                f"{where}.max_in_flight: must be between 1 and limits.max_in_flight "
                f"({config.limits.max_in_flight})"
            )
        for i, cidr in enumerate(source.allow_cidrs):
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ConfigError(f"{where}.allow_cidrs[{i}]: {cidr!r} is not a CIDR") from None
    for field in ("events", "raw", "deadletter", "attempts"):
        _check_topic(f"topics.{field}", getattr(config.topics, field))
    _check_subscribers(config)
    seen: set[str] = set()
    for i, route in enumerate(config.routes):
        if route.name in seen:
            raise ConfigError(f"routes[{i}].name: duplicate route name {route.name!r}")
        seen.add(route.name)
        _check_topic(f"routes[{i}].topic", route.topic)


def no_key_password() -> str:
    """An encrypted key without ``ssl_password``: fail, rather than let OpenSSL prompt."""
    raise ConfigError("kafka.ssl_keyfile: the key is encrypted; set kafka.ssl_password")


def _check_tls_files(kafka: Kafka) -> None:
    """The CA bundle and client certificate load as TLS will load them, or one line says why."""
    import ssl

    try:
        context = ssl.create_default_context(cafile=kafka.ssl_cafile)
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"kafka.ssl_cafile: not a PEM CA bundle: {exc}") from None
    if kafka.ssl_certfile is None:
        return
    try:
        context.load_cert_chain(
            kafka.ssl_certfile, kafka.ssl_keyfile, password=kafka.ssl_password or no_key_password
        )
    except ssl.SSLError as exc:
        raise ConfigError(
            f"kafka.ssl_certfile: the certificate and key do not load: {exc.reason or exc} "
            "(a PEM certificate, its key, and kafka.ssl_password if the key is encrypted)"
        ) from None


def _check_kafka_security(kafka: Kafka) -> None:
    """Settings that contradict the protocol, or files that cannot be read, fail at load."""
    protocol = kafka.security_protocol
    uses_tls = protocol in ("SSL", "SASL_SSL")
    uses_sasl = protocol.startswith("SASL_")
    for field in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        path = getattr(kafka, field)
        if path is None:
            continue
        if not uses_tls:
            raise ConfigError(
                f"kafka.{field}: set, but kafka.security_protocol is {protocol} "
                "(use SSL or SASL_SSL)"
            )
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise ConfigError(f"kafka.{field}: cannot read {path}: {exc.strerror or exc}") from None
    if kafka.ssl_keyfile is not None and kafka.ssl_certfile is None:
        raise ConfigError("kafka.ssl_keyfile: set without kafka.ssl_certfile")
    if uses_tls:
        _check_tls_files(kafka)
    sasl_fields = ("sasl_mechanism", "sasl_plain_username", "sasl_plain_password")
    if not uses_sasl:
        for field in (*sasl_fields, "sasl_oauth_token"):
            if getattr(kafka, field) is not None:
                raise ConfigError(
                    f"kafka.{field}: set, but kafka.security_protocol is {protocol} "
                    "(use SASL_SSL or SASL_PLAINTEXT)"
                )
        return
    mechanism = kafka.sasl_mechanism
    if mechanism is None:
        raise ConfigError(
            f"kafka.sasl_mechanism: required with {protocol} "
            "(PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER)"
        )
    if mechanism == "OAUTHBEARER":
        if not kafka.sasl_oauth_token:
            raise ConfigError("kafka.sasl_oauth_token: required with sasl_mechanism OAUTHBEARER")
        return
    for field in ("sasl_plain_username", "sasl_plain_password"):
        if not getattr(kafka, field):
            raise ConfigError(
                f"kafka.{field}: required with sasl_mechanism {mechanism} "
                "(is its environment variable set?)"
            )


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


def _check_topic(where: str, topic: str) -> None:
    if not _TOPIC.match(topic) or topic in (".", ".."):
        raise ConfigError(
            f"{where}: {topic!r} is not a Kafka topic name (letters, digits, '.', '_', '-')"
        )


_SUBSCRIBER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _check_subscribers(config: Config) -> None:
    names: set[str] = set()
    for i, sub in enumerate(config.subscribers):
        where = f"subscribers[{i}]"
        if not _SUBSCRIBER_NAME.match(sub.name):
            raise ConfigError(f"{where}.name: letters, digits, '_', '.', '-' (got {sub.name!r})")
        if sub.name in names:
            raise ConfigError(f"{where}.name: duplicate subscriber name {sub.name!r}")
        names.add(sub.name)
        parsed = urlsplit(sub.url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ConfigError(f"{where}.url: expected an http(s) URL, got {sub.url!r}")
        if not sub.topic_list(config.topics.events):
            raise ConfigError(f"{where}.topics: no topics given")
        if sub.timeout <= 0:
            raise ConfigError(f"{where}.timeout: must be positive")
        if sub.retry.max_attempts < 1:
            raise ConfigError(f"{where}.retry.max_attempts: must be at least 1")
        if sub.max_in_flight < 1:
            raise ConfigError(f"{where}.max_in_flight: must be at least 1")
        _check_breaker(f"{where}.circuit_breaker", sub.circuit_breaker)
        for header, value in sub.headers.items():
            if not _HEADER_NAME.match(header):
                raise ConfigError(f"{where}.headers: {header!r} is not an HTTP header name")
            if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
                raise ConfigError(f"{where}.headers.{header}: control characters are not allowed")
        for j, topic in enumerate(sub.topic_list(config.topics.events)):
            _check_topic(f"{where}.topics[{j}]", topic)
        secrets = [("secret", sub.secret)] if sub.secret is not None else []
        secrets += [(f"secrets[{j}]", value) for j, value in enumerate(sub.secrets)]
        for field, value in secrets:
            try:
                webhook_secret(value)
            except ValueError as exc:
                raise ConfigError(f"{where}.{field}: {exc}") from None


def _check_breaker(where: str, breaker: CircuitBreaker) -> None:
    if not 0 < breaker.failure_rate <= 1 or not math.isfinite(breaker.failure_rate):
        raise ConfigError(f"{where}.failure_rate: must be above 0 and at most 1")
    if breaker.min_attempts < 1:
        raise ConfigError(f"{where}.min_attempts: must be at least 1")
    if breaker.half_open_attempts < 1:
        raise ConfigError(f"{where}.half_open_attempts: must be at least 1")
    for field in ("window", "no_success_for", "cooldown"):
        if getattr(breaker, field) <= 0:
            raise ConfigError(f"{where}.{field}: must be positive")
    if breaker.cooldown_max < breaker.cooldown:
        raise ConfigError(f"{where}.cooldown_max: must be at least cooldown")


def _normalize_secrets(data: Any) -> Any:
    """``signing_secret: ""``, ``admin.token: ""`` or ``metrics.token: ""`` (an unset
    ``${VAR:-}``) mean none."""
    for section in ("admin", "metrics"):
        found = data.get(section) if isinstance(data, dict) else None
        if isinstance(found, dict) and found.get("token") == "":
            found["token"] = None
    sources = data.get("sources") if isinstance(data, dict) else None
    if isinstance(sources, dict):
        for source in sources.values():
            if isinstance(source, dict) and source.get("signing_secret") == "":
                source["signing_secret"] = None
    return data


class DuplicateKey(yaml.MarkedYAMLError):
    """The same key twice in one mapping: PyYAML would silently keep the last one."""


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing duplicate keys (a second ``sources:`` block would
    otherwise replace the first without a word)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` then overriding a key is what merges are for
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key; the base class reports it
            if first is not None:
                raise DuplicateKey(
                    problem=f"duplicate key {key!r} (first at line {first.line + 1})",
                    problem_mark=key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def parse(text: str, *, env: Mapping[str, str] | None = None, name: str = "<config>") -> Config:
    try:
        raw = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except DuplicateKey as exc:
        mark = exc.problem_mark
        assert mark is not None
        raise ConfigError(f"{name}:{mark.line + 1}:{mark.column + 1}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark is not None else name
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: the top level must be a mapping")
    data = _normalize_secrets(interpolate(raw, os.environ if env is None else env))
    config = _convert(data)
    _check(config)
    return config


def load(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> Config:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return parse(text, env=env, name=str(path))
