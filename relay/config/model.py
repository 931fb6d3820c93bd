"""The settings: one msgspec Struct per section of the file, one field per setting.

A value's constraint is in its type (relay.config.fields, relay.units), a rule across fields
in the Struct's ``__post_init__``; msgspec checks both while decoding and names the path.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import msgspec

from relay.config.fields import (
    AtLeastOne,
    Invalid,
    Name,
    Port,
    Positive,
    Section,
    Share,
    Token,
    Topic,
)
from relay.config.kafka import Kafka
from relay.events import ProviderName
from relay.providers import PROVIDERS
from relay.units import PerSecond, PositiveSeconds, Seconds, positive_seconds, seconds

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


class Listen(Section, frozen=True, kw_only=True):
    host: str = "0.0.0.0"
    port: Port = 8080
    server: Literal["lean", "aiohttp"] = "lean"
    """Who serves the hook route: relay's lean HTTP server (everything else on the port
    still goes to aiohttp), or aiohttp for all of it."""


class Source(Section, frozen=True, kw_only=True):
    provider: ProviderName
    tokens: list[Token] = []
    signing_secret: str | None = None
    signature_tolerance: Seconds = seconds("5m")
    """How far a signed Chatwoot timestamp may be from now (replay protection)."""
    allow_cidrs: list[str] = []
    rate_limit: PerSecond | None = None
    """Requests accepted from this source per second (``100/s``, ``6000/m``); past it, 429."""
    max_in_flight: AtLeastOne | None = None
    """This source's share of ``limits.max_in_flight``: past it, 503 for this source only, so
    its slow clients cannot crowd the others out. Default: a quarter of the limit (all of it
    when there is only one source)."""

    def __post_init__(self) -> None:
        if self.signing_secret is not None and PROVIDERS[self.provider].verify is None:
            signed = ", ".join(name for name, p in PROVIDERS.items() if p.verify)
            raise Invalid("signing_secret", f"only {signed} sources sign webhooks")
        for i, cidr in enumerate(self.allow_cidrs):
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise Invalid(f"allow_cidrs[{i}]", f"{cidr!r} is not a CIDR") from None

    def in_flight_share(self, limits: Limits, sources: int) -> int:
        if self.max_in_flight is not None:
            return self.max_in_flight
        if sources <= 1:
            return limits.max_in_flight
        return max(1, limits.max_in_flight // 4)


class Topics(Section, frozen=True, kw_only=True):
    events: Topic = "chat.events"
    raw: Topic = "relay.raw"
    deadletter: Topic = "relay.deadletter"
    attempts: Topic = "relay.attempts"
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
    topic: Topic


class Limits(Section, frozen=True, kw_only=True):
    max_body_bytes: Positive = DEFAULT_MAX_BODY_BYTES
    body_timeout: PositiveSeconds = positive_seconds("30s")
    """A body that takes longer than this to arrive (slowloris) is answered 408."""
    max_in_flight: AtLeastOne = 4096
    """Webhook requests in progress at once; past it, 503 with Retry-After (backpressure)."""
    max_events_per_body: AtLeastOne = 1000
    """A body that would make more canonical events is dead-lettered (too_many_events)."""
    header_timeout: PositiveSeconds = positive_seconds("10s")
    """A connection that sends no complete request head for this long is closed."""


class Dedupe(Section, frozen=True, kw_only=True):
    window: Seconds = seconds("10m")
    """A delivery retried within this window makes one event; 0 turns deduplication off."""
    max_entries: AtLeastOne = 100_000


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


class Telemetry(Section, frozen=True, kw_only=True):
    """Tracing (docs/tracing.md): OpenTelemetry spans exported over OTLP/HTTP.

    Off, and free, unless an endpoint is set here or in ``OTEL_EXPORTER_OTLP_ENDPOINT`` /
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``; needs ``pip install 'relay[otel]'``.
    """

    otlp_endpoint: str | None = None
    """The collector's OTLP/HTTP base URL (``http://collector:4318``); spans go to
    ``<otlp_endpoint>/v1/traces``. Wins over the environment's endpoint; empty means none."""
    service_name: str | None = None
    """``service.name`` of the spans (default: ``OTEL_SERVICE_NAME``, else ``relay``)."""

    def __post_init__(self) -> None:
        if self.otlp_endpoint:
            parsed = urlsplit(self.otlp_endpoint)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise Invalid(
                    "otlp_endpoint",
                    "expected the collector's OTLP/HTTP URL (http://collector:4318), "
                    f"got {self.otlp_endpoint!r}",
                )


class Logging(Section, frozen=True, kw_only=True):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class Retry(Section, frozen=True, kw_only=True):
    max_attempts: AtLeastOne = 12
    backoff: Literal["exponential"] = "exponential"
    initial: Seconds = seconds("1s")
    max: Seconds = seconds("1h")
    jitter: bool = True


class CircuitBreaker(Section, frozen=True, kw_only=True):
    """Opens when the endpoint fails as a whole; see relay.delivery.breaker for the rule."""

    window: PositiveSeconds = positive_seconds("30s")
    """The failure rate is measured over this much recent time."""
    failure_rate: Share = 0.9
    """Failed share of the attempts in the window that opens the circuit."""
    min_attempts: AtLeastOne = 10
    """Fewer attempts than this (in the window, or since the last success) never open it."""
    no_success_for: PositiveSeconds = positive_seconds("15s")
    """Failing without one success this long (and min_attempts times) opens it."""
    cooldown: PositiveSeconds = positive_seconds("5s")
    """How long an open circuit waits before probing; doubled after each failed probe."""
    cooldown_max: Seconds = seconds("5m")
    half_open_attempts: AtLeastOne = 3
    """Probe attempts let through at once when half-open; the first success closes it."""

    def __post_init__(self) -> None:
        if self.cooldown_max < self.cooldown:
            raise Invalid("cooldown_max", "must be at least cooldown")


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


class Subscriber(Section, frozen=True, kw_only=True):
    name: Name
    url: str
    topics: Topic | Annotated[list[Topic], msgspec.Meta(min_length=1)] | None = None
    """Topics read (default: the events topic)."""
    match: Match = Match()
    format: Literal["cloudevent", "data"] = "cloudevent"
    headers: dict[str, str] = {}
    secret: str | None = None
    secrets: list[str] = []
    timeout: PositiveSeconds = positive_seconds("10s")
    retry: Retry = Retry()
    max_in_flight: AtLeastOne = 32
    rate_limit: PerSecond | None = None
    """``100/s``, ``6000/m`` or a number per second."""
    on_4xx: Literal["deadletter", "retry"] = "deadletter"
    circuit_breaker: CircuitBreaker = CircuitBreaker()
    start_from: Literal["latest", "earliest"] = "latest"
    """Where a subscriber that has never committed an offset starts reading."""

    def __post_init__(self) -> None:
        parsed = urlsplit(self.url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise Invalid("url", f"expected an http(s) URL, got {self.url!r}")
        for header, value in self.headers.items():
            if not _HEADER_NAME.match(header):
                raise Invalid("headers", f"{header!r} is not an HTTP header name")
            if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
                raise Invalid(f"headers.{header}", "control characters are not allowed")
        secrets = [("secret", self.secret)] if self.secret is not None else []
        secrets += [(f"secrets[{j}]", value) for j, value in enumerate(self.secrets)]
        for field, value in secrets:
            try:
                webhook_secret(value)
            except ValueError as exc:
                raise Invalid(field, str(exc)) from None

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
    sources: dict[Name, Source] = {}
    topics: Topics = Topics()
    routes: list[Route] = []
    subscribers: list[Subscriber] = []
    limits: Limits = Limits()
    logging: Logging = Logging()
    admin: Admin = Admin()
    console: Console = Console()
    metrics: Metrics = Metrics()
    dedupe: Dedupe = Dedupe()
    telemetry: Telemetry = Telemetry()
    shutdown_grace: Seconds = seconds("20s")
    """On SIGTERM: how long in-flight requests and deliveries get before relay exits."""
    workers: Annotated[int, msgspec.Meta(ge=1)] | Literal["auto"] = 1
    """``relay serve`` processes sharing the listen port (``auto``: one per core); 1 is one
    process, no supervisor."""
    allow_insecure_defaults: bool = False
    """Listen beyond loopback even with short secrets or the shipped examples' values."""
    debug_errors: bool = False
    """Say why a hook was refused (unknown source, which credential) instead of one 401."""

    def __post_init__(self) -> None:
        """The rules that join two sections (source names are checked by the loader, which
        knows the keys)."""
        if self.admin.listen is not None and self.admin.listen.port == self.listen.port:
            raise Invalid("admin.listen.port", "the same port as listen.port; pick another")
        limit = self.limits.max_in_flight
        for name, source in self.sources.items():
            if source.max_in_flight is not None and source.max_in_flight > limit:
                raise Invalid(
                    f"sources.{name}.max_in_flight",
                    f"must be at most limits.max_in_flight ({limit})",
                )
        _unique("routes", [route.name for route in self.routes], "route")
        _unique("subscribers", [sub.name for sub in self.subscribers], "subscriber")

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)


def _unique(field: str, names: list[str], what: str) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise Invalid(f"{field}[{i}].name", f"duplicate {what} name {name!r}")
        seen.add(name)


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
