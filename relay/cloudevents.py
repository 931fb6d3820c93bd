"""The canonical event's wire forms: the CloudEvents 1.0 bindings relay speaks, and their codecs.

- **Structured** (the JSON event format): the whole event as one JSON document. A Kafka
  record's value with ``content-type: application/cloudevents+json; charset=utf-8`` and a
  ``ce_id`` header, a dead letter's value, an HTTP delivery's body.
- **Kafka binary** (``kafka.binary``): ``data`` as the value, every other attribute as a
  ``ce_<name>`` header.
- **HTTP binary** (``format: data`` subscribers): ``data`` as the body, the envelope as
  ``ce-<name>`` headers, percent-encoded outside printable ASCII.

One reused encoder and one decoder per type, as msgspec advises; :data:`head_decoder` reads
only the envelope, for filters that need no body.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

import msgspec

from relay.events import CloudEvent, EventData, EventHead

HTTP_CONTENT_TYPE = "application/cloudevents+json"
"""An HTTP delivery's Content-Type in structured mode."""
RECORD_CONTENT_TYPE = b"application/cloudevents+json; charset=utf-8"
"""The ``content-type`` header of a structured Kafka record (events and delivery dead letters)."""
DATA_CONTENT_TYPE = "application/json"
"""``data``'s own content type: a binary record's value, a ``format: data`` body."""

Headers = tuple[tuple[str, bytes], ...]

encoder = msgspec.json.Encoder()
event_decoder = msgspec.json.Decoder(CloudEvent)
head_decoder = msgspec.json.Decoder(EventHead)
_data_decoder = msgspec.json.Decoder(EventData)

# Kafka protocol binding, binary content mode: attributes as ``ce_<name>`` headers.
_BINARY_ATTRIBUTES = (
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "dataschema",
    "partitionkey",
    "providerdelivery",
)
_DATA_CONTENT_TYPE_HEADER = DATA_CONTENT_TYPE.encode()


def encode(event: CloudEvent) -> bytes:
    """The structured form: the whole event as JSON."""
    return encoder.encode(event)


def decode(payload: bytes) -> CloudEvent:
    """An event from its structured form."""
    return event_decoder.decode(payload)


def encode_data(event: CloudEvent) -> bytes:
    """``data`` alone, as JSON: a binary record's value, a ``format: data`` body."""
    return encoder.encode(event.data)


def structured_headers(event: CloudEvent) -> Headers:
    """The headers of a structured Kafka record of ``event``."""
    return (("content-type", RECORD_CONTENT_TYPE), ("ce_id", event.id.encode()))


def to_binary(event: CloudEvent) -> tuple[bytes, Headers]:
    """The event as a binary-mode Kafka record: ``data`` as the value, the rest as headers."""
    headers = [("content-type", _DATA_CONTENT_TYPE_HEADER)]
    for name in _BINARY_ATTRIBUTES:
        value = getattr(event, name)
        if value is not None:
            headers.append((f"ce_{name}", value.encode()))
    return encoder.encode(event.data), tuple(headers)


def from_binary(value: bytes, headers: Mapping[str, bytes]) -> CloudEvent:
    """Rebuild an event from a binary-mode record; raises msgspec.DecodeError when it is not."""
    attributes: dict[str, Any] = {
        name: headers[f"ce_{name}"].decode()
        for name in _BINARY_ATTRIBUTES
        if f"ce_{name}" in headers
    }
    attributes["datacontenttype"] = DATA_CONTENT_TYPE
    attributes["data"] = _data_decoder.decode(value)
    try:
        return msgspec.convert(attributes, CloudEvent)
    except msgspec.ValidationError as exc:
        raise msgspec.DecodeError(f"not a binary-mode CloudEvent: {exc}") from None


def is_binary(headers: Mapping[str, bytes]) -> bool:
    """Whether a record with these headers is in binary mode."""
    return "ce_specversion" in headers


def structured(value: bytes, headers: Mapping[str, bytes]) -> bytes:
    """A record's event in structured form: its value, or re-encoded from binary mode."""
    return encode(from_binary(value, headers)) if is_binary(headers) else value


HeadersLike = Mapping[str, bytes | str] | Iterable[tuple[str, bytes | str]]
"""Record headers as a client gives them: a mapping, or ``(name, value)`` pairs."""


def _lowered(headers: HeadersLike | None) -> dict[str, bytes]:
    if headers is None:
        return {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    found: dict[str, bytes] = {}
    for name, value in items:
        found[name.lower()] = value.encode() if isinstance(value, str) else bytes(value)
    return found


def from_record(value: bytes, headers: HeadersLike | None = None) -> CloudEvent:
    """An event from a Kafka record in either mode; headers may be any client's shape.

    Raises ``msgspec.DecodeError``/``msgspec.ValidationError`` for anything else.
    """
    found = _lowered(headers)
    if is_binary(found):
        return from_binary(value, found)
    return decode(value)


# CloudEvents HTTP binding: header values are percent-encoded outside printable ASCII.
_HEADER_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


def http_binary_headers(event: CloudEvent) -> dict[str, str]:
    """CloudEvents HTTP binary mode: the envelope as ``ce-*`` headers beside the bare data."""
    headers = {
        "ce-specversion": event.specversion,
        "ce-id": event.id,
        "ce-source": event.source,
        "ce-type": event.type,
        "ce-time": event.time,
        "ce-partitionkey": event.partitionkey,
    }
    if event.subject is not None:
        headers["ce-subject"] = event.subject
    return {name: quote(value, safe=_HEADER_SAFE) for name, value in headers.items()}
