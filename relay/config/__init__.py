"""Configuration: YAML → environment interpolation → msgspec Structs, errors with paths.

Adding a setting is one field on its section's Struct in :mod:`relay.config.model` (a
constrained type from :mod:`relay.config.fields` or :mod:`relay.units` if the value has
limits, a line in ``__post_init__`` if it depends on another field) and its README text.

- :mod:`relay.config.model`: the sections and their rules
- :mod:`relay.config.kafka`: the ``kafka:`` section and its security rules
- :mod:`relay.config.fields`: constrained value types (ports, names, topics, counts)
- :mod:`relay.config.load`: YAML, ``${VAR}``, ``parse`` and ``load``
- :mod:`relay.config.errors`: msgspec's errors as one line with the path
"""

from relay.config.errors import ConfigError
from relay.config.kafka import Kafka, no_key_password
from relay.config.load import interpolate, load, parse
from relay.config.model import (
    DEFAULT_MAX_BODY_BYTES,
    Admin,
    CircuitBreaker,
    Config,
    Console,
    Dedupe,
    Limits,
    Listen,
    Logging,
    Match,
    Metrics,
    Patterns,
    Retry,
    Route,
    Source,
    Subscriber,
    Topics,
    webhook_secret,
)
from relay.units import per_second, seconds

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "Admin",
    "CircuitBreaker",
    "Config",
    "ConfigError",
    "Console",
    "Dedupe",
    "Kafka",
    "Limits",
    "Listen",
    "Logging",
    "Match",
    "Metrics",
    "Patterns",
    "Retry",
    "Route",
    "Source",
    "Subscriber",
    "Topics",
    "interpolate",
    "load",
    "no_key_password",
    "parse",
    "per_second",
    "seconds",
    "webhook_secret",
]
