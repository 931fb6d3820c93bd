"""The public Python API: relay.normalize and relay.decode_event."""

from __future__ import annotations

import pytest

import relay
from relay.cloudevents import encode, to_binary
from relay.events import CloudEvent
from relay.providers import MalformedBody, Unmappable
from tests.support import fixture_bytes


def test_normalize_gives_typed_events() -> None:
    [event] = relay.normalize(
        "plugchat", fixture_bytes("plugchat/receiveMessage/location.json"), kind="receiveMessage"
    )
    assert isinstance(event, CloudEvent)
    assert event.source == "relay/plugchat"  # the provider's name when no source is given
    assert event.data.message is not None and event.data.message.location is not None
    assert event.data.message.location.latitude == -23.4205


def test_normalize_with_a_source_matches_the_server() -> None:
    body = fixture_bytes("chatwoot/message_created.json")
    [a] = relay.normalize("chatwoot", body, source="nexloo")
    [b] = relay.normalize("chatwoot", body, source="nexloo")
    assert a.id == b.id and a.source == "relay/nexloo" and a.partitionkey.startswith("nexloo:")


def test_normalize_errors() -> None:
    with pytest.raises(MalformedBody):
        relay.normalize("chatwoot", b"{not json")
    with pytest.raises(Unmappable) as unmappable:
        relay.normalize("chatwoot", b'{"event": "nope"}')
    assert unmappable.value.reason == "unknown_event"
    with pytest.raises(KeyError, match="unknown provider"):
        relay.normalize("whatsapp", b"{}")


@pytest.fixture
def event() -> CloudEvent:
    [event] = relay.normalize(
        "plugchat", fixture_bytes("plugchat/receiveMessage/order_cart.json"), kind="receiveMessage"
    )
    return event


def test_decode_structured(event: CloudEvent) -> None:
    assert relay.decode_event(encode(event)) == event
    headers = [("content-type", b"application/cloudevents+json; charset=utf-8")]
    assert relay.decode_event(encode(event), headers) == event


def test_decode_binary_as_aiokafka_gives_headers(event: CloudEvent) -> None:
    value, headers = to_binary(event)
    decoded = relay.decode_event(value, list(headers))
    assert decoded == event
    assert decoded.data.message is not None and decoded.data.message.order is not None
    assert decoded.data.message.order.total is not None
    assert decoded.data.message.order.total.amount == 20970
    # str header values (an HTTP delivery's headers) work too
    assert relay.decode_event(value, {k: v.decode() for k, v in headers}) == event


def test_decode_rejects_what_is_not_an_event() -> None:
    import msgspec

    with pytest.raises(msgspec.DecodeError):
        relay.decode_event(b'{"hello": 1}')


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError):
        _ = relay.nonsense  # type: ignore[attr-defined]
