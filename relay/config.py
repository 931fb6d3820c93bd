"""Configuration: YAML → environment interpolation → msgspec Structs, errors with paths.

A mistake is reported as one line naming where it is in the file, e.g.
``routes[1].topic: expected str, got int``.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec
import yaml

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
    linger_ms: int = 2
    request_timeout_ms: int = 30_000

    @property
    def servers(self) -> list[str]:
        if isinstance(self.bootstrap_servers, str):
            return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]
        return list(self.bootstrap_servers)


class Source(Section, frozen=True, kw_only=True):
    provider: Literal["chatwoot", "plugchat"]
    tokens: list[str] = []
    signing_secret: str | None = None
    signature_tolerance: int = 300
    """Seconds a signed Chatwoot timestamp may differ from now (replay protection)."""
    allow_cidrs: list[str] = []


class Topics(Section, frozen=True, kw_only=True):
    events: str = "chat.events"
    raw: str = "relay.raw"
    deadletter: str = "relay.deadletter"


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


class Logging(Section, frozen=True, kw_only=True):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class Config(Section, frozen=True, kw_only=True):
    listen: Listen = Listen()
    data_dir: str = "./var"
    kafka: Kafka | None = None
    sources: dict[str, Source] = {}
    topics: Topics = Topics()
    routes: list[Route] = []
    limits: Limits = Limits()
    logging: Logging = Logging()

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)


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


def _validation_message(exc: msgspec.ValidationError, prefix: str = "") -> str:
    match = _MSGSPEC_PATH.match(str(exc))
    assert match is not None
    message = match.group("message")
    path = prefix + (match.group("path") or "")
    field = _FIELD_PROBLEM.match(message)
    if field is not None:
        path += "." + field.group("field")
        message = "unknown field" if "unknown" in message else "required field is missing"
    else:
        message = (message[:1].lower() + message[1:]).replace("`", "")
    path = path.lstrip(".")
    return f"{path}: {message}" if path else message


def _convert(data: dict[str, Any]) -> Config:
    # msgspec's paths do not name mapping keys, so sources are checked one by one first.
    sources = data.get("sources")
    if isinstance(sources, dict):
        for name, source in sources.items():
            try:
                msgspec.convert(source, Source, strict=False)
            except msgspec.ValidationError as exc:
                raise ConfigError(_validation_message(exc, f".sources.{name}")) from None
    try:
        return msgspec.convert(data, Config, str_keys=True, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_validation_message(exc)) from None


def _check(config: Config) -> None:
    """Rules the types alone cannot say."""
    if not 0 < config.listen.port < 65536:
        raise ConfigError(f"listen.port: {config.listen.port} is not a TCP port")
    if config.limits.max_body_bytes <= 0:
        raise ConfigError("limits.max_body_bytes: must be positive")
    if config.kafka is not None and not config.kafka.servers:
        raise ConfigError("kafka.bootstrap_servers: no servers given")
    for name, source in config.sources.items():
        where = f"sources.{name}"
        if not _SOURCE_NAME.match(name):
            raise ConfigError(f"{where}: a source name is letters, digits, '_', '.', '-'")
        for i, token in enumerate(source.tokens):
            if not token.strip():
                raise ConfigError(
                    f"{where}.tokens[{i}]: empty token (is its environment variable set?)"
                )
        if source.signing_secret is not None and source.provider != "chatwoot":
            raise ConfigError(f"{where}.signing_secret: only chatwoot sources sign webhooks")
        for i, cidr in enumerate(source.allow_cidrs):
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ConfigError(f"{where}.allow_cidrs[{i}]: {cidr!r} is not a CIDR") from None
    for field in ("events", "raw", "deadletter"):
        if not getattr(config.topics, field).strip():
            raise ConfigError(f"topics.{field}: empty topic name")
    seen: set[str] = set()
    for i, route in enumerate(config.routes):
        if route.name in seen:
            raise ConfigError(f"routes[{i}].name: duplicate route name {route.name!r}")
        seen.add(route.name)
        if not route.topic.strip():
            raise ConfigError(f"routes[{i}].topic: empty topic name")


def _normalize_secrets(data: Any) -> Any:
    """``signing_secret: ""`` (an unset ``${VAR:-}``) means no signing secret."""
    sources = data.get("sources") if isinstance(data, dict) else None
    if isinstance(sources, dict):
        for source in sources.values():
            if isinstance(source, dict) and source.get("signing_secret") == "":
                source["signing_secret"] = None
    return data


def parse(text: str, *, env: Mapping[str, str] | None = None, name: str = "<config>") -> Config:
    try:
        raw = yaml.safe_load(text)
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
