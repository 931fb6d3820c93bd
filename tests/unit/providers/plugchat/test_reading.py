"""relay/providers/plugchat/reading.py: ``moment`` is ``as_time``, only faster; and every
object is read through ``clean``, so padded keys read as clean ones."""

from __future__ import annotations

import copy
import json
from random import Random
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from relay.cloudevents import encode
from relay.events import event_id
from relay.providers import Unmappable
from relay.providers.base import body_digest
from relay.providers.coerce import as_e164, as_str, as_time
from relay.providers.plugchat import (
    attendance,
    commerce,
    content,
    interactive,
    message,
    reading,
    zapi,
)
from relay.providers.plugchat.reading import moment, phone_of
from tests.factories import normalize
from tests.support import FIXTURES, json_objects

MS = 946_684_800_000  # as_time's first millisecond; its last is 7_258_118_400_000


@given(
    st.one_of(
        st.integers(min_value=MS - 2_000, max_value=MS + 10**12),
        st.integers(min_value=7_258_118_400_000 - 2_000, max_value=7_258_118_400_000 + 2_000),
        st.integers(),
        st.floats(),
        st.text(max_size=30),
        st.none(),
        st.booleans(),
    )
)
@example(1784045777838)
@example(MS)
@example(MS - 1)
@example(7_258_118_400_000)
@example(7_258_118_400_001)
@example(1784052763)
@example(1784045777999)
@example("1784045777838")
def test_moment_is_as_time(value: Any) -> None:
    assert moment(value) == as_time(value)


PHONE_TEXT = st.text(alphabet="0123456789 +-()@.lidgroup\t", max_size=20)


@given(st.one_of(PHONE_TEXT, st.text(max_size=80), st.integers(), st.floats(), st.none()))
@example("554430309000")
@example("+5544999990001")
@example("5544999990001-group")
@example("1" * 70)
def test_phone_of_is_as_e164_again_and_again(value: Any) -> None:
    assert phone_of(value) == as_e164(value)
    assert phone_of(value) == as_e164(value)  # now from the cache


@given(st.one_of(PHONE_TEXT, st.text(max_size=80), st.integers(), st.none()))
@example(" 5544999990001 ")
@example("120363025246125888-group")
def test_a_chat_address_is_the_same_from_the_cache(value: Any) -> None:
    raw = None if as_str(value) is None else as_str(value).strip()  # type: ignore[union-attr]
    expected = (
        (raw, as_e164(raw), None if as_e164(raw) else raw) if raw is not None else (None,) * 3
    )
    assert message.chat_address(value) == expected
    assert message.chat_address(value) == expected


# Every object of a PlugChat body is read through clean(): a key sent with stray whitespace
# reads as its clean spelling, wherever it is. So a body with padded keys gives the events of
# the same body with clean ones, up to what only the spelling can change: a key copied as
# sent into a raw part (extensions, attributes), and an id made from the body's digest.

READ_KEYS = sorted(
    {
        key
        for module in (attendance, commerce, content, interactive, message, reading, zapi)
        for value in vars(module).values()
        if isinstance(value, frozenset)
        for key in value
        if isinstance(key, str)
    }
)
"""Every key a PlugChat reader looks for (the modules' key sets)."""
SPACES = [" ", "\t", "\xa0", "\u3000", "  "]


def _stripped(value: Any) -> Any:
    if isinstance(value, dict):
        return {key.strip(): _stripped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_stripped(item) for item in value]
    return value


def events(body: bytes, kind: str) -> Any:
    """What a body makes: its events as JSON with every key stripped and an id made from
    the body's digest said so, or the refusal."""
    try:
        made = normalize("plugchat", body, kind=kind)
    except Unmappable as exc:
        return ("unmappable", exc.reason, exc.detail)
    found = []
    for event in made:
        value = _stripped(json.loads(encode(event)))
        if value["id"] == event_id("src", event.type, body_digest(body)):
            value["id"] = "the body's digest"
        found.append(value)
    return found


def _pad(obj: dict[str, Any], key: str, spelled: str) -> None:
    """``obj[key]`` renamed ``spelled`` in its place (readers go by the body's order)."""
    items = [(spelled if name == key else name, value) for name, value in obj.items()]
    obj.clear()
    obj.update(items)


FIXTURE_PATHS = sorted(
    path.relative_to(FIXTURES).as_posix() for path in (FIXTURES / "plugchat").rglob("*.json")
)


@pytest.mark.parametrize("fixture", FIXTURE_PATHS)
def test_every_key_padded_in_every_object_reads_as_the_clean_body(fixture: str) -> None:
    """Each key of each object (transcript entries, list items and nested objects
    included), padded in turn before, after or on both sides."""
    kind = fixture.split("/")[1]
    original = (FIXTURES / fixture).read_text()
    clean_body = json.dumps(json.loads(original)).encode()
    expected = events(clean_body, kind)
    compared = 0
    for at in range(len(json_objects(json.loads(original)))):
        for n, key in enumerate(json_objects(json.loads(original))[at]):
            space = SPACES[n % len(SPACES)]
            spelled = [f"{key}{space}", f"{space}{key}", f"{space}{key}{space}"][n % 3]
            bent = json.loads(original)
            _pad(json_objects(bent)[at], key, spelled)
            assert events(json.dumps(bent).encode(), kind) == expected, (at, spelled)
            compared += 1
    assert compared


SWEPT = [
    f"plugchat/{kind}/{name}.json"
    for kind, name in [
        ("receiveMessage", "from_ad"),
        ("receiveMessage", "order_cart"),
        ("messageStatus", "read_multiple_ids"),
        ("messageDeliveryError", "error_object"),
        ("whenDisconnecting", "disconnected"),
        ("startAttendance", "realistic"),
    ]
]


@pytest.mark.parametrize("fixture", SWEPT)
def test_every_read_key_set_in_every_object_reads_the_same_padded(fixture: str) -> None:
    """Each key a reader looks for, set in each object (to a text, null or an object),
    some of which no fixture has: padded, it reads as it does clean."""
    kind = fixture.split("/")[1]
    original = (FIXTURES / fixture).read_text()
    for at in range(len(json_objects(json.loads(original)))):
        for n, key in enumerate(READ_KEYS):
            for value in ("x", None, {"id": 3, "name": "n", "messageId": "m"}):
                body = json.loads(original)
                obj = json_objects(body)[at]
                if any(name != key and name.strip() == key for name in obj):
                    continue  # padded, it would be a twin of that spelling: another body
                obj[key] = value
                expected = events(json.dumps(body).encode(), kind)
                _pad(json_objects(body)[at], key, f"{key}{SPACES[n % len(SPACES)]}")
                assert events(json.dumps(body).encode(), kind) == expected, (at, key, value)


EDITED_VALUES = [None, "", " ", 0, 7, 1.5, True, [], {}, "x", [1], {"a": 1}, ["a", "b"]]
EDITED_VALUES += [{"id": 3, "name": "n"}, [{"name": "v", "title": "t"}], " READ "]
EDITED_VALUES += ["2026-07-14T13:18:01Z", 1784035081, 1784035081123]


AT = st.integers(min_value=0, max_value=10_000)
EDIT = st.tuples(
    AT, AT, st.sampled_from(["drop", "odd", "add", "widen"]), st.sampled_from(EDITED_VALUES)
)
"""(which object, which key, the edit, the odd value)."""


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fixture=st.sampled_from(FIXTURE_PATHS),
    edits=st.lists(EDIT, max_size=3),
    padding=st.randoms(use_true_random=False),
)
def test_bent_bodies_padded_anywhere_read_as_clean(
    fixture: str, edits: list[tuple[int, int, str, Any]], padding: Random
) -> None:
    """A fixture bent (a key dropped, an odd value, a read key added, an object widened
    past the size clean() checks key by key), then any of its keys padded."""
    kind = fixture.split("/")[1]
    body = json.loads((FIXTURES / fixture).read_text())
    for which, key_at, edit, odd in edits:
        obj = json_objects(body)[which % len(json_objects(body))]
        if edit == "widen":
            obj.update({f"extra{i}": i for i in range(70)})
        elif edit == "add":
            obj[READ_KEYS[key_at % len(READ_KEYS)]] = copy.deepcopy(odd)
        elif obj:
            key = list(obj)[key_at % len(obj)]
            if edit == "drop":
                del obj[key]
            else:
                obj[key] = copy.deepcopy(odd)
    expected = events(json.dumps(body).encode(), kind)
    for obj in json_objects(body):
        for key in list(obj):
            if padding.random() < 0.3:
                space = padding.choice(SPACES)
                _pad(obj, key, f"{key}{space}" if padding.random() < 0.5 else f"{space}{key}")
    assert events(json.dumps(body, ensure_ascii=padding.random() < 0.5).encode(), kind) == expected
