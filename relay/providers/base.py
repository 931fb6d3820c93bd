"""What every provider normalizer shares: the input it gets and the errors it raises."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import msgspec

from relay.events import (
    DATASCHEMA,
    CloudEvent,
    EventData,
    EventType,
    event_id,
)


class Inbound(msgspec.Struct, frozen=True, kw_only=True):
    """One received webhook, as ingress saw it."""

    source: str
    body: bytes
    received_at: str
    kind: str | None = None
    """The URL kind (PlugChat); None for providers that name events in the body."""
    delivery_id: str | None = None


class MalformedBody(ValueError):
    """The body is not JSON at all: the sender can fix it (answer 400)."""


class Unmappable(ValueError):
    """Valid JSON relay cannot turn into a canonical event (dead-letter it, answer 202)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


Normalizer = Callable[[Inbound], list[CloudEvent]]

_json_decoder = msgspec.json.Decoder()


def parse_json(body: bytes) -> Any:
    """Parse a body once with the shared decoder; any failure is :class:`MalformedBody`."""
    try:
        return _json_decoder.decode(body)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise MalformedBody(f"body is not valid JSON: {exc}") from None


def _keep_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON object hook: the last value wins, earlier duplicates are kept under ``key#n``."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            n = 2
            while f"{key}#{n}" in result:
                n += 1
            result[f"{key}#{n}"] = result[key]
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json_keeping_duplicates(body: bytes) -> Any:
    """Parse a body where duplicate keys carry data (PlugChat transcripts keyed by message id).

    Slower than :func:`parse_json`; used only for the rare payloads that need it.
    """
    try:
        return json.loads(
            body, object_pairs_hook=_keep_duplicate_keys, parse_constant=_reject_constant
        )
    except (ValueError, RecursionError) as exc:
        raise MalformedBody(f"body is not valid JSON: {exc}") from None


def body_digest(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def require_object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise Unmappable("not_an_object", f"expected a JSON object, got {_json_kind(payload)}")
    return payload


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null"


def build_event(
    inbound: Inbound,
    *,
    type_: EventType,
    identity: str,
    time: str | None,
    partition: str | None,
    subject: str | None,
    data: EventData,
) -> CloudEvent:
    """Wrap normalized data in the envelope with a deterministic id and partition key."""
    return CloudEvent(
        specversion="1.0",
        id=event_id(inbound.source, type_, identity),
        source=f"relay/{inbound.source}",
        type=type_,
        subject=subject,
        time=time or inbound.received_at,
        datacontenttype="application/json",
        dataschema=DATASCHEMA,
        partitionkey=f"{inbound.source}:{partition}" if partition else inbound.source,
        providerdelivery=inbound.delivery_id,
        data=data,
    )
