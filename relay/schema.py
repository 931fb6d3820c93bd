"""Published contracts: the JSON Schema of the canonical event, and an AsyncAPI 3.0
document of the topics relay writes and the HTTP endpoints it serves.

Both are generated, never written by hand: the schema from the msgspec Structs in
``relay/events.py``, the AsyncAPI document from those Structs and a :class:`Config`,
so neither can drift from what relay produces.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec
import yaml

from relay import __version__
from relay.bus.embedded import LOG_FILE
from relay.config import Config, Route
from relay.delivery.service import group_id
from relay.events import DATASCHEMA, SCHEMA_VERSION, CloudEvent, json_schema
from relay.ingest import CLOUDEVENTS_CONTENT_TYPE
from relay.ingress.errors import ErrorBody
from relay.ingress.handlers import AcceptedBody
from relay.providers import PROVIDERS

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING = "0.5.0"
HTTP_BINDING = "0.3.0"

Format = Literal["yaml", "json"]


def event_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of one canonical event, as published by ``relay schema``.

    Its ``$id`` is the ``dataschema`` every event carries; the ``data`` part alone is
    ``#/$defs/EventData`` (for subscribers that receive only ``data``).
    """
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": DATASCHEMA,
        "title": "relay canonical event",
        "description": (
            "A CloudEvents 1.0 envelope (structured JSON mode) around relay's typed event "
            "body. Parts that do not apply to an event type are absent. Generated from "
            "relay/events.py; new optional fields may appear within a schema version."
        ),
        "version": SCHEMA_VERSION,
        **json_schema(),
    }


def render(document: dict[str, Any], fmt: Format) -> str:
    if fmt == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


# --- AsyncAPI -----------------------------------------------------------------------


def _ref(*parts: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)}


def _strings(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def _headers(properties: dict[str, dict[str, Any]], required: Iterable[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required)}


_RAW_HEADERS = {
    "relay-source": _strings("The configured source the body came from."),
    "relay-provider": _strings("Its provider dialect.", enum=sorted(PROVIDERS)),
    "relay-kind": _strings("The PlugChat kind from the URL (camelCase); absent for Chatwoot."),
    "relay-request-id": _strings("The request id (X-Request-Id) of the HTTP request."),
    "relay-received-at": _strings("When relay received it, RFC 3339 UTC with milliseconds."),
    "content-type": _strings("The request's Content-Type, when it sent one."),
    "relay-delivery-id": _strings("The provider's delivery id (X-Chatwoot-Delivery), if any."),
}
_RAW_REQUIRED = ("relay-source", "relay-provider", "relay-request-id", "relay-received-at")
_DEADLETTER_REASONS = [
    "malformed_json",
    "not_an_object",
    "missing_event",
    "unknown_event",
    "unknown_kind",
    "unknown_type",
    "unmappable",
    "normalizer_error",
    "too_many_events",
    "event_too_large",
    "unencodable",
]
_SOURCE_KEY = {"type": "string", "description": "The source name."}
_WEBHOOK_HEADERS = _headers(
    {
        "webhook-id": _strings("The event id: the same on every retry, for deduplication."),
        "webhook-timestamp": _strings("Unix seconds of this attempt."),
        "webhook-signature": _strings(
            "v1,<base64 HMAC-SHA256 of '<id>.<timestamp>.<body>'>, one per secret; "
            "absent when the subscriber has no secret."
        ),
    },
    ["webhook-id", "webhook-timestamp"],
)


def _messages() -> dict[str, Any]:
    content_type = CLOUDEVENTS_CONTENT_TYPE.decode()
    raw_payload = {
        "description": (
            "The request body exactly as received, byte for byte: normally JSON, "
            "but a body that is not JSON is kept too."
        )
    }
    webhooks = {f"{name}Webhook": dict(p.webhook_message) for name, p in PROVIDERS.items()}
    return {
        **webhooks,
        "canonicalEvent": {
            "name": "CanonicalEvent",
            "title": "Canonical event",
            "summary": "One canonical CloudEvent (structured JSON).",
            "contentType": content_type,
            "headers": _headers(
                {
                    "content-type": _strings("Structured CloudEvents.", const=content_type),
                    "ce_id": _strings("The event id (equal to the payload's id)."),
                },
                ["content-type", "ce_id"],
            ),
            "payload": _ref("components", "schemas", "CloudEvent"),
            "bindings": {
                "kafka": {
                    "key": {
                        "type": "string",
                        "description": (
                            "The event's partitionkey, {source}:{conversation}: one "
                            "conversation's events keep their order."
                        ),
                    },
                    "bindingVersion": KAFKA_BINDING,
                }
            },
        },
        "rawBody": {
            "name": "RawBody",
            "title": "Raw webhook body",
            "summary": "Every authenticated request body, as received.",
            "headers": _headers(_RAW_HEADERS, _RAW_REQUIRED),
            "payload": raw_payload,
            "bindings": {"kafka": {"key": _SOURCE_KEY, "bindingVersion": KAFKA_BINDING}},
        },
        "deadLetter": {
            "name": "DeadLetter",
            "title": "Dead letter",
            "summary": "A body relay could not normalize, with the reason.",
            "headers": _headers(
                {
                    **_RAW_HEADERS,
                    "relay-reason": _strings(
                        "Why it is here (a short code).", examples=_DEADLETTER_REASONS
                    ),
                    "relay-error": _strings("A human-readable detail, at most 1 KiB."),
                },
                [*_RAW_REQUIRED, "relay-reason", "relay-error"],
            ),
            "payload": raw_payload,
            "bindings": {"kafka": {"key": _SOURCE_KEY, "bindingVersion": KAFKA_BINDING}},
        },
        "deliveryDeadLetter": {
            "name": "DeliveryDeadLetter",
            "title": "Delivery dead letter",
            "summary": (
                "A canonical event a subscriber rejected (4xx) or whose retries ran out; "
                "relay replay --deadletter sends it again."
            ),
            "contentType": content_type,
            "headers": _headers(
                {
                    "relay-reason": _strings(
                        "Why.", examples=["delivery_rejected", "delivery_exhausted"]
                    ),
                    "relay-subscriber": _strings("The subscriber's name."),
                    "relay-event-id": _strings("The event id."),
                    "relay-attempts": _strings("Attempts made (a decimal number)."),
                    "relay-last-status": _strings("The last HTTP status, empty if none."),
                    "relay-error": _strings("The last error, at most 1 KiB."),
                    "relay-original-topic": _strings("Where the event was read."),
                    "relay-original-offset": _strings("Its offset there."),
                    "content-type": _strings("Structured CloudEvents.", const=content_type),
                },
                ["relay-reason", "relay-subscriber", "relay-event-id", "relay-original-topic"],
            ),
            "payload": _ref("components", "schemas", "CloudEvent"),
            "bindings": {
                "kafka": {
                    "key": {"type": "string", "description": "The event's partitionkey."},
                    "bindingVersion": KAFKA_BINDING,
                }
            },
        },
        "subscriberEvent": {
            "name": "SubscriberEvent",
            "title": "Delivered event",
            "summary": "One canonical CloudEvent, signed per Standard Webhooks; 2xx acknowledges.",
            "contentType": content_type,
            "headers": _WEBHOOK_HEADERS,
            "payload": _ref("components", "schemas", "CloudEvent"),
        },
        "subscriberData": {
            "name": "SubscriberData",
            "title": "Delivered event data",
            "summary": "The data of one canonical event (format: data); 2xx acknowledges.",
            "contentType": "application/json",
            "headers": _WEBHOOK_HEADERS,
            "payload": _ref("components", "schemas", "EventData"),
        },
        "hookAccepted": {
            "name": "HookAccepted",
            "title": "202 Accepted",
            "summary": (
                "Every record of the request is durable on the bus. accepted is 0 and "
                "deadlettered names the reason when the body could not be normalized."
            ),
            "contentType": "application/json",
            "payload": _ref("components", "schemas", "AcceptedBody"),
            "bindings": {"http": {"statusCode": 202, "bindingVersion": HTTP_BINDING}},
        },
        "hookError": {
            "name": "HookError",
            "title": "Error",
            "summary": (
                "400 malformed_json, 401 unauthorized, 404 unknown_source|unknown_kind|"
                "not_found, 405 method_not_allowed, 413 payload_too_large, "
                "415 unsupported_media_type, 503 unavailable (with Retry-After)."
            ),
            "contentType": "application/json",
            "payload": _ref("components", "schemas", "ErrorBody"),
        },
    }


_SECURITY_SCHEMES = {
    "tokenQuery": {
        "type": "httpApiKey",
        "name": "token",
        "in": "query",
        "description": "A source token as ?token= (for providers that cannot send headers).",
    },
    "tokenHeader": {"type": "httpApiKey", "name": "X-Relay-Token", "in": "header"},
    "bearer": {"type": "http", "scheme": "bearer", "description": "A source token."},
}


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
        "servers": [_ref("servers", server)],
        "messages": {name: _ref("components", "messages", name) for name in entry.messages},
    }
    if config.kafka is not None:
        channel["bindings"] = {"kafka": {"topic": address, "bindingVersion": KAFKA_BINDING}}
    if entry.routes:
        channel["x-relay-routes"] = entry.routes
    return channel


def _publish(config: Config, address: str, entry: _Topic) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "action": "send",
        "channel": _ref("channels", entry.id),
        "title": f"Publish to {address}",
        "messages": [_ref("channels", entry.id, "messages", m) for m in entry.messages],
    }
    if config.kafka is not None:
        operation["bindings"] = {
            "kafka": {
                "clientId": {"type": "string", "enum": [config.kafka.client_id]},
                "bindingVersion": KAFKA_BINDING,
            }
        }
    return operation


def _public_url(url: str) -> tuple[str, str, str]:
    """scheme, host[:port] and path of a subscriber URL, without credentials or query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        host += f":{parts.port}"
    return parts.scheme, host, parts.path or "/"


def _subscribers(
    config: Config, topics: dict[str, _Topic], taken: set[str]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Servers, channels and operations of delivery: relay reads topics, POSTs to URLs."""
    servers: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for subscriber in config.subscribers:
        channel_id = _channel_id(subscriber.name, taken, prefix="subscriber-")
        scheme, host, path = _public_url(subscriber.url)
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
            "servers": [_ref("servers", channel_id)],
            "messages": {message: _ref("components", "messages", message)},
        }
        match = {k: v for k, v in msgspec.to_builtins(subscriber.match).items() if v is not None}
        read = subscriber.topic_list(config.topics.events)
        operations[f"deliver-{channel_id}"] = {
            "action": "send",
            "channel": _ref("channels", channel_id),
            "title": f"Deliver to {subscriber.name}",
            "messages": [_ref("channels", channel_id, "messages", message)],
            "bindings": {"http": {"method": "POST", "bindingVersion": HTTP_BINDING}},
            "x-relay-topics": read,
            "x-relay-match": match,
        }
        for topic in read:
            entry = topics[topic]
            consume: dict[str, Any] = {
                "action": "receive",
                "channel": _ref("channels", entry.id),
                "title": f"{subscriber.name} reads {topic}",
                "messages": [_ref("channels", entry.id, "messages", "canonicalEvent")],
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
            "servers": [_ref("servers", "ingress")],
            "messages": {
                message: _ref("components", "messages", message)
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
            "channel": _ref("channels", channel_id),
            "title": f"Receive {name} webhooks",
            "summary": "202 only once every record of the request is durable on the bus.",
            "messages": [_ref("channels", channel_id, "messages", webhook)],
            "bindings": {"http": {"method": "POST", "bindingVersion": HTTP_BINDING}},
            "reply": {
                "channel": _ref("channels", channel_id),
                "messages": [
                    _ref("channels", channel_id, "messages", "hookAccepted"),
                    _ref("channels", channel_id, "messages", "hookError"),
                ],
            },
            "x-relay-authentication": authentication or ["none"],
        }
        if source.tokens:
            operation["security"] = [
                _ref("components", "securitySchemes", scheme) for scheme in _SECURITY_SCHEMES
            ]
        operations[f"receive-{channel_id}"] = operation
    return channels, operations


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
        (CloudEvent, AcceptedBody, ErrorBody), ref_template="#/components/schemas/{name}"
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
            "messages": _messages(),
            "securitySchemes": _SECURITY_SCHEMES,
        },
        "x-relay-http-endpoints": [
            {
                "method": "GET",
                "path": "/healthz",
                "description": 'The process is alive: 200 {"status": "ok"}.',
            },
            {
                "method": "GET",
                "path": "/readyz",
                "description": (
                    'The bus is up and relay accepts webhooks: 200 {"status": "ready"}, '
                    'otherwise 503 {"status": "not_ready"}; "mode" says direct or spooling.'
                ),
            },
            {
                "method": "GET",
                "path": "/metrics",
                "description": "Prometheus text exposition of relay's metrics.",
            },
            {
                "method": "POST",
                "path": "/admin/reload",
                "description": (
                    "Reload sources, routes and subscribers (Authorization: Bearer "
                    "<admin.token>); 409 when the new configuration is refused."
                ),
            },
        ],
    }
