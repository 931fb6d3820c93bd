"""The canonical event's wire forms: structured and binary Kafka records, HTTP binary headers."""

from __future__ import annotations

import json

import msgspec
import pytest

from relay import cloudevents
from relay.events import CloudEvent
from tests.factories import chat_event


@pytest.fixture
def event() -> CloudEvent:
    return chat_event(9, 7)


def test_structured_round_trip_and_record_headers(event: CloudEvent) -> None:
    value = cloudevents.encode(event)
    assert cloudevents.decode(value) == event
    assert dict(cloudevents.structured_headers(event)) == {
        "content-type": b"application/cloudevents+json; charset=utf-8",
        "ce_id": event.id.encode(),
    }
    assert not cloudevents.is_binary(dict(cloudevents.structured_headers(event)))


def test_binary_mode_carries_data_as_value_and_the_envelope_as_headers(event: CloudEvent) -> None:
    value, headers = cloudevents.to_binary(event)
    found = dict(headers)
    assert json.loads(value) == json.loads(cloudevents.encode_data(event))
    assert found["content-type"] == b"application/json"
    assert found["ce_id"] == event.id.encode() and found["ce_type"] == event.type.encode()
    assert cloudevents.is_binary(found)
    assert cloudevents.from_binary(value, found) == event
    assert cloudevents.structured(value, found) == cloudevents.encode(event)


def test_a_structured_record_stays_as_it_is(event: CloudEvent) -> None:
    value = cloudevents.encode(event)
    assert cloudevents.structured(value, dict(cloudevents.structured_headers(event))) is value


@pytest.mark.parametrize("shape", ["pairs", "mapping", "text", "upper"])
def test_from_record_reads_either_mode_whatever_the_headers_shape(
    event: CloudEvent, shape: str
) -> None:
    value, headers = cloudevents.to_binary(event)
    given: object = {
        "pairs": list(headers),
        "mapping": dict(headers),
        "text": [(name, raw.decode()) for name, raw in headers],
        "upper": [(name.upper(), raw) for name, raw in headers],
    }[shape]
    assert cloudevents.from_record(value, given) == event  # type: ignore[arg-type]
    assert cloudevents.from_record(cloudevents.encode(event)) == event


def test_a_binary_record_missing_attributes_is_a_decode_error(event: CloudEvent) -> None:
    value, headers = cloudevents.to_binary(event)
    partial = {name: raw for name, raw in headers if name != "ce_id"}
    with pytest.raises(msgspec.DecodeError, match="not a binary-mode CloudEvent"):
        cloudevents.from_binary(value, partial)


def test_http_binary_headers_are_percent_encoded_outside_printable_ascii() -> None:
    event = msgspec.structs.replace(chat_event(1, 1), subject="conversa ç\n%")
    headers = cloudevents.http_binary_headers(event)
    assert headers["ce-subject"] == "conversa %C3%A7%0A%25"
    assert headers["ce-id"] == event.id and headers["ce-specversion"] == "1.0"
    assert set(headers) == {
        "ce-specversion",
        "ce-id",
        "ce-source",
        "ce-type",
        "ce-time",
        "ce-partitionkey",
        "ce-subject",
    }
