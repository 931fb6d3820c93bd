"""``relay asyncapi``: the AsyncAPI 3.0 document of a configuration's topics, hooks,
subscribers and HTTP endpoints, assembled from the code's own tables so it cannot drift:

- a :class:`Config` (topics, routes, sources, subscribers) and the canonical Structs;
- :data:`PROVIDERS` (each provider brings its webhook message, kinds and title);
- ``ingress.responses.ERRORS`` (``hookError`` and ``x-relay-error-codes``);
- relay.deadletters (the ``relay-reason`` enums);
- the route tables relay.app serves (``x-relay-http-endpoints``, handler docstrings).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from relay import __version__
from relay.admin.api import AUTHORIZATION
from relay.admin.api import ROUTES as ADMIN_ROUTES
from relay.attempts import Attempt
from relay.bus import group_id
from relay.bus.embedded import LOG_FILE
from relay.config import Config, Route
from relay.console import CONSOLE_ENTRY
from relay.console import ROUTES as CONSOLE_ROUTES
from relay.contracts.messages import (
    HTTP_BINDING,
    KAFKA_BINDING,
    SECURITY_SCHEMES,
    messages,
    ref,
)
from relay.events import DATASCHEMA, SCHEMA_VERSION, CloudEvent
from relay.ingress import METRICS, PROBES
from relay.ingress.responses import ERRORS, AcceptedBody, ErrorBody
from relay.providers import PROVIDERS
from relay.urls import public_parts

ASYNCAPI_VERSION = "3.0.0"


def _channel_id(name: str, taken: set[str], prefix: str = "") -> str:
    base = prefix + (re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "topic")
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    taken.add(candidate)
    return candidate


def _route_summary(route: Route) -> dict[str, Any]:
    match = {k: v for k, v in msgspec.to_builtins(route.match).items() if v is not None}
    return {"name": route.name, "match": match}


@dataclass
class _Topic:
    id: str
    written: bool = False
    descriptions: list[str] = field(default_factory=list)
    messages: dict[str, None] = field(default_factory=dict)
    """Message ids, in order (a dict as an ordered set)."""
    routes: list[dict[str, Any]] = field(default_factory=list)


def _topics(config: Config, taken: set[str]) -> dict[str, _Topic]:
    """Every topic relay writes or a subscriber reads: events, routed, raw, dead letters."""
    topics: dict[str, _Topic] = {}

    def topic(name: str, description: str, message: str, *, written: bool = True) -> _Topic:
        entry = topics.setdefault(name, _Topic(_channel_id(name, taken)))
        if description not in entry.descriptions:
            entry.descriptions.append(description)
        entry.messages[message] = None
        entry.written = entry.written or written
        return entry

    topic(config.topics.events, "Canonical events that no route claims.", "canonicalEvent")
    for route in config.routes:
        routed = topic(route.topic, "Canonical events the x-relay-routes match.", "canonicalEvent")
        routed.routes.append(_route_summary(route))
    topic(config.topics.raw, "Every authenticated webhook body, bytes as received.", "rawBody")
    topic(
        config.topics.deadletter,
        "Bodies that could not be normalized (relay-reason names why).",
        "deadLetter",
    )
    topic(
        config.topics.deadletter,
        "Events a subscriber rejected, or whose delivery exhausted its retries.",
        "deliveryDeadLetter",
    )
    if config.subscribers:
        topic(
            config.topics.attempts,
            "Every delivery attempt (the attempt log the admin API and console read).",
            "deliveryAttempt",
        )
    for subscriber in config.subscribers:
        for name in subscriber.topic_list(config.topics.events):
            if name not in topics:
                topic(
                    name,
                    "Read by subscribers; relay does not write it.",
                    "canonicalEvent",
                    written=False,
                )
    return topics


def _topic_channel(config: Config, address: str, entry: _Topic, server: str) -> dict[str, Any]:
    channel: dict[str, Any] = {
        "address": address,
        "title": address,
        "description": " ".join(entry.descriptions),
        "servers": [ref("servers", server)],
        "messages": {name: ref("components", "messages", name) for name in entry.messages},
    }
    if config.kafka is not None:
        channel["bindings"] = {"kafka": {"topic": address, "bindingVersion": KAFKA_BINDING}}
    if entry.routes:
        channel["x-relay-routes"] = entry.routes
    return channel


def _publish(config: Config, address: str, entry: _Topic) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "action": "send",
        "channel": ref("channels", entry.id),
        "title": f"Publish to {address}",
        "messages": [ref("channels", entry.id, "messages", m) for m in entry.messages],
    }
    if config.kafka is not None:
        operation["bindings"] = {
            "kafka": {
                "clientId": {"type": "string", "enum": [config.kafka.client_id]},
                "bindingVersion": KAFKA_BINDING,
            }
        }
    return operation


def _subscribers(
    config: Config, topics: dict[str, _Topic], taken: set[str]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Servers, channels and operations of delivery: relay reads topics, POSTs to URLs."""
    servers: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for subscriber in config.subscribers:
        channel_id = _channel_id(subscriber.name, taken, prefix="subscriber-")
        scheme, host, path = public_parts(subscriber.url)
        path = path or "/"
        servers[channel_id] = {
            "host": host,
            "protocol": scheme,
            "description": f"Subscriber {subscriber.name!r}.",
        }
        message = "subscriberData" if subscriber.format == "data" else "subscriberEvent"
        channels[channel_id] = {
            "address": path,
            "title": f"subscriber {subscriber.name}",
            "description": (
                "relay POSTs each matching event here, signed per Standard Webhooks, "
                "retrying with backoff; one in flight per partition key."
            ),
            "servers": [ref("servers", channel_id)],
            "messages": {message: ref("components", "messages", message)},
        }
        match = {k: v for k, v in msgspec.to_builtins(subscriber.match).items() if v is not None}
        read = subscriber.topic_list(config.topics.events)
        operations[f"deliver-{channel_id}"] = {
            "action": "send",
            "channel": ref("channels", channel_id),
            "title": f"Deliver to {subscriber.name}",
            "messages": [ref("channels", channel_id, "messages", message)],
            "bindings": {"http": {"method": "POST", "bindingVersion": HTTP_BINDING}},
            "x-relay-topics": read,
            "x-relay-match": match,
        }
        for topic in read:
            entry = topics[topic]
            consume: dict[str, Any] = {
                "action": "receive",
                "channel": ref("channels", entry.id),
                "title": f"{subscriber.name} reads {topic}",
                "messages": [ref("channels", entry.id, "messages", "canonicalEvent")],
            }
            if config.kafka is not None:
                consume["bindings"] = {
                    "kafka": {
                        "groupId": {"type": "string", "enum": [group_id(subscriber)]},
                        "bindingVersion": KAFKA_BINDING,
                    }
                }
            operations[f"consume-{channel_id}-{entry.id}"] = consume
    return servers, channels, operations


def _hook_channels(config: Config, taken: set[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for name, source in sorted(config.sources.items()):
        channel_id = _channel_id(name, taken, prefix="hook-")
        provider = PROVIDERS[source.provider]
        webhook = f"{provider.name}Webhook"
        channel: dict[str, Any] = {
            "address": f"/v1/hooks/{name}",
            "title": f"{name} webhooks",
            "description": f"Source {name!r} ({source.provider}) posts its webhooks here.",
            "servers": [ref("servers", "ingress")],
            "messages": {
                message: ref("components", "messages", message)
                for message in (webhook, "hookAccepted", "hookError")
            },
        }
        if provider.takes_kind:
            channel["address"] += "/{kind}"
            channel["parameters"] = {
                "kind": {
                    "enum": list(provider.kinds),
                    "description": (
                        f"The {provider.title} webhook kind; kebab-case is accepted too."
                    ),
                }
            }
        channels[channel_id] = channel
        authentication = [
            *(["token"] if source.tokens else []),
            *([f"{provider.name}-signature"] if source.signing_secret else []),
            *(["cidr-allowlist"] if source.allow_cidrs else []),
        ]
        operation: dict[str, Any] = {
            "action": "receive",
            "channel": ref("channels", channel_id),
            "title": f"Receive {name} webhooks",
            "summary": "202 only once every record of the request is durable on the bus.",
            "messages": [ref("channels", channel_id, "messages", webhook)],
            "bindings": {"http": {"method": "POST", "bindingVersion": HTTP_BINDING}},
            "reply": {
                "channel": ref("channels", channel_id),
                "messages": [
                    ref("channels", channel_id, "messages", "hookAccepted"),
                    ref("channels", channel_id, "messages", "hookError"),
                ],
            },
            "x-relay-authentication": authentication or ["none"],
        }
        if source.tokens:
            operation["security"] = [
                ref("components", "securitySchemes", scheme) for scheme in SECURITY_SCHEMES
            ]
        operations[f"receive-{channel_id}"] = operation
    return channels, operations


def _description(handler: Callable[..., Any]) -> str:
    """A handler's docstring (its wrappers' unwrapped), as one line."""
    return " ".join((inspect.unwrap(handler).__doc__ or "").split())


def http_endpoints() -> list[dict[str, str]]:
    """The HTTP endpoints besides the hooks, read from the route tables relay.app serves;
    each handler's docstring is its description."""
    endpoints = [
        {"method": r.method, "path": r.path, "description": _description(r.handler)}
        for r in (*PROBES, *METRICS)
    ]
    endpoints += [
        {
            "method": r.method,
            "path": r.path,
            "description": f"{_description(r.handler)} {AUTHORIZATION}.",
        }
        for r in ADMIN_ROUTES
    ]
    endpoints += [
        {"method": r.method, "path": r.path, "description": _description(r.handler)}
        for r in CONSOLE_ROUTES
        if r.path == CONSOLE_ENTRY
    ]
    return endpoints


def asyncapi(config: Config) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of a configuration's topics and HTTP endpoints."""
    servers: dict[str, Any] = {
        "ingress": {
            "host": f"{config.listen.host}:{config.listen.port}",
            "protocol": "http",
            "description": "relay's HTTP ingress (the configured listen address).",
        }
    }
    if config.kafka is not None:
        bus_server = "kafka"
        servers[bus_server] = {
            "host": ",".join(config.kafka.servers),
            "protocol": "kafka",
            "description": "The Kafka cluster relay publishes to (its bootstrap servers).",
        }
    else:
        bus_server = "embedded"
        servers[bus_server] = {
            "host": "localhost",
            "protocol": "sqlite",
            "description": (
                "No Kafka is configured: topics live in relay's embedded log, "
                f"{(Path(config.data_dir) / LOG_FILE).as_posix()} (read them with relay tail)."
            ),
        }

    taken: set[str] = set()
    topics = _topics(config, taken)
    channels = {
        entry.id: _topic_channel(config, address, entry, bus_server)
        for address, entry in topics.items()
    }
    operations = {
        f"publish-{entry.id}": _publish(config, address, entry)
        for address, entry in topics.items()
        if entry.written
    }
    hook_channels, hook_operations = _hook_channels(config, taken)
    sub_servers, sub_channels, sub_operations = _subscribers(config, topics, taken)
    servers.update(sub_servers)

    _, schemas = msgspec.json.schema_components(
        (CloudEvent, AcceptedBody, ErrorBody, Attempt), ref_template="#/components/schemas/{name}"
    )
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "relay",
            "version": __version__,
            "description": (
                "Chat-platform webhooks in, canonical CloudEvents out. Providers POST to "
                "the hook channels; relay publishes to the topic channels and delivers "
                "to the subscriber channels. The canonical event's schema is "
                f"{DATASCHEMA} (relay schema prints it as JSON Schema)."
            ),
            "x-relay-schema-version": SCHEMA_VERSION,
        },
        "defaultContentType": "application/json",
        "servers": servers,
        "channels": {**channels, **hook_channels, **sub_channels},
        "operations": {**hook_operations, **operations, **sub_operations},
        "components": {
            "schemas": schemas,
            "messages": messages(),
            "securitySchemes": SECURITY_SCHEMES,
        },
        "x-relay-http-endpoints": http_endpoints(),
        "x-relay-error-codes": [msgspec.to_builtins(error) for error in ERRORS],
    }
