"""The AsyncAPI message components relay publishes: canonical events, raw copies, dead
letters, subscriber deliveries, each provider's webhook, the HTTP answers. Assembled into
the document by :mod:`relay.contracts.asyncapi`.

The vocabularies come from the code's tables: providers from :data:`PROVIDERS` (each brings
its webhook message), dead-letter reasons from :mod:`relay.deadletters`, error codes from
``ingress.responses.ERRORS``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from relay.cloudevents import RECORD_CONTENT_TYPE
from relay.deadletters import DELIVERY_REASONS, INGEST_REASONS
from relay.ingress.responses import hook_error_summary
from relay.providers import PROVIDERS

KAFKA_BINDING = "0.5.0"
HTTP_BINDING = "0.3.0"


def ref(*parts: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in parts)}


def _strings(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def _headers(properties: dict[str, dict[str, Any]], required: Iterable[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required)}


RAW_HEADERS = {
    "relay-source": _strings("The configured source the body came from."),
    "relay-provider": _strings("Its provider dialect.", enum=sorted(PROVIDERS)),
    "relay-kind": _strings("The PlugChat kind from the URL (camelCase); absent for Chatwoot."),
    "relay-request-id": _strings("The request id (X-Request-Id) of the HTTP request."),
    "relay-received-at": _strings("When relay received it, RFC 3339 UTC with milliseconds."),
    "content-type": _strings("The request's Content-Type, when it sent one."),
    "relay-delivery-id": _strings("The provider's delivery id (X-Chatwoot-Delivery), if any."),
}
RAW_REQUIRED = ("relay-source", "relay-provider", "relay-request-id", "relay-received-at")
SOURCE_KEY = {"type": "string", "description": "The source name."}
WEBHOOK_HEADERS = _headers(
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


def messages() -> dict[str, Any]:
    content_type = RECORD_CONTENT_TYPE.decode()
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
            "payload": ref("components", "schemas", "CloudEvent"),
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
            "headers": _headers(RAW_HEADERS, RAW_REQUIRED),
            "payload": raw_payload,
            "bindings": {"kafka": {"key": SOURCE_KEY, "bindingVersion": KAFKA_BINDING}},
        },
        "deadLetter": {
            "name": "DeadLetter",
            "title": "Dead letter",
            "summary": "A body relay could not normalize, with the reason.",
            "headers": _headers(
                {
                    **RAW_HEADERS,
                    "relay-reason": _strings(
                        "Why it is here (a short code).", enum=list(INGEST_REASONS)
                    ),
                    "relay-error": _strings("A human-readable detail, at most 1 KiB."),
                },
                [*RAW_REQUIRED, "relay-reason", "relay-error"],
            ),
            "payload": raw_payload,
            "bindings": {"kafka": {"key": SOURCE_KEY, "bindingVersion": KAFKA_BINDING}},
        },
        "deliveryAttempt": {
            "name": "DeliveryAttempt",
            "title": "Delivery attempt",
            "summary": (
                "One attempt to deliver an event to a subscriber (the attempt log): when, how "
                "long, the HTTP status or error class, a bounded excerpt of the answer, and "
                "the outcome (delivered, retrying, deadlettered, disabled)."
            ),
            "contentType": "application/vnd.relay.attempt+json",
            "payload": ref("components", "schemas", "Attempt"),
            "bindings": {
                "kafka": {
                    "key": {"type": "string", "description": "The event id."},
                    "bindingVersion": KAFKA_BINDING,
                }
            },
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
                        "Why: rejected (a 4xx), exhausted (retries ran out) or crashed.",
                        enum=list(DELIVERY_REASONS),
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
            "payload": ref("components", "schemas", "CloudEvent"),
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
            "headers": WEBHOOK_HEADERS,
            "payload": ref("components", "schemas", "CloudEvent"),
        },
        "subscriberData": {
            "name": "SubscriberData",
            "title": "Delivered event data",
            "summary": "The data of one canonical event (format: data); 2xx acknowledges.",
            "contentType": "application/json",
            "headers": WEBHOOK_HEADERS,
            "payload": ref("components", "schemas", "EventData"),
        },
        "hookAccepted": {
            "name": "HookAccepted",
            "title": "202 Accepted",
            "summary": (
                "Every record of the request is durable on the bus. accepted is 0 and "
                "deadlettered names the reason when the body could not be normalized."
            ),
            "contentType": "application/json",
            "payload": ref("components", "schemas", "AcceptedBody"),
            "bindings": {"http": {"statusCode": 202, "bindingVersion": HTTP_BINDING}},
        },
        "hookError": {
            "name": "HookError",
            "title": "Error",
            "summary": hook_error_summary() + " (429 and 503 with Retry-After).",
            "contentType": "application/json",
            "payload": ref("components", "schemas", "ErrorBody"),
        },
    }


SECURITY_SCHEMES = {
    "tokenQuery": {
        "type": "httpApiKey",
        "name": "token",
        "in": "query",
        "description": "A source token as ?token= (for providers that cannot send headers).",
    },
    "tokenHeader": {"type": "httpApiKey", "name": "X-Relay-Token", "in": "header"},
    "bearer": {"type": "http", "scheme": "bearer", "description": "A source token."},
}
