"""The 1.1 pass-through: unmodelled fields kept, JSON as received, bounded in size."""

from __future__ import annotations

import json

import msgspec

from relay.providers.extensions import MAX_EXTENSION_BYTES, OMITTED, bounded, leftovers
from tests.factories import normalize


def test_leftovers_skip_known_padded_and_empty_keys() -> None:
    obj = {"id": 1, " name ": "x", "extra": {"a": 1}, "none": None, "empty": {}, "flag": False}
    assert leftovers(obj, frozenset({"id", "name"})) == {"extra": {"a": 1}, "flag": False}


def test_bounded_keeps_small_parts_whole() -> None:
    assert bounded([("message", {"a": 1}), ("contact", None)]) == {"message": {"a": 1}}
    assert bounded([("message", None)]) is None


def test_bounded_drops_the_largest_values_and_says_which() -> None:
    parts = {f"k{i}": "x" * 1000 for i in range(40)}
    parts["small"] = "kept"
    result = bounded([("message", parts), ("contact", {"blocked": True})])
    assert result is not None
    assert len(msgspec.json.encode(result)) <= MAX_EXTENSION_BYTES
    assert result["message"]["small"] == "kept" and result["contact"] == {"blocked": True}
    omitted = result[OMITTED]
    assert omitted and all(name.startswith("message.k") for name in omitted)
    assert len(omitted) + len(result["message"]) == len(parts)


def test_a_huge_body_makes_a_bounded_event() -> None:
    body = {
        "type": "ReceivedCallback",
        "messageId": "m1",
        "phone": "5544999990001",
        "text": {"message": "oi"},
        **{f"vendorField{i}": "v" * 500 for i in range(2000)},
    }
    [event] = normalize("plugchat", json.dumps(body).encode(), kind="receiveMessage")
    extensions = event.data.extensions
    assert extensions is not None
    assert len(msgspec.json.encode(extensions["plugchat"])) <= MAX_EXTENSION_BYTES
    kept = extensions["plugchat"]
    assert kept["message"]["_omitted_keys"] > 1700  # only so many keys an object are kept
    assert len(kept[OMITTED]) <= 64  # and the list of omitted keys is bounded too


def test_a_small_body_of_numbers_that_grow_when_re_encoded_stays_bounded() -> None:
    # "1e15" re-encodes as "1000000000000000.0": the size shortcut must still hold
    numbers = {f"n{i}": [1e15] * 100 for i in range(10)}
    body = json.dumps(
        {"type": "ReceivedCallback", "messageId": "m", "text": {"message": "x"}, **numbers}
    ).replace("1000000000000000.0", "1e15")
    [event] = normalize("plugchat", body.encode(), kind="receiveMessage")
    assert event.data.extensions is not None
    assert len(msgspec.json.encode(event.data.extensions["plugchat"])) <= MAX_EXTENSION_BYTES
