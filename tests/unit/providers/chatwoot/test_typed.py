"""The typed path (relay/providers/chatwoot/typed.py) gives the dict path's events or
declines: every fixture, every key a reader looks for set in every object, padded and
duplicated keys, reordered objects, arbitrary bends (hypothesis). The dict path is held to
the frozen tolerant reader by tests/unit/providers/test_fast.py."""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import relay.providers.chatwoot as chatwoot
from relay.cloudevents import encode
from relay.providers import Inbound, Unmappable
from relay.providers.chatwoot import content, parts, typed
from relay.providers.chatwoot.fast import normalize_fast as dict_path
from tests.support import FIXTURES, json_objects

DECLINED = (typed.NotTyped, msgspec.ValidationError, msgspec.DecodeError, RecursionError)
READERS = (typed.read_message, typed.read_conversation, typed.read_contact)

TYPED_FIXTURES = sorted(
    f"chatwoot/{path.name}"
    for pattern in ("message_*.json", "*conversation_*.json", "contact_*.json")
    for path in (FIXTURES / "chatwoot").glob(pattern)
    if "typing" not in path.name
)
"""Chatwoot's message, conversation and contact bodies as its builders write them: the
typed path's to read."""


def inbound(body: bytes) -> Inbound:
    return Inbound(source="src", body=body, received_at="2030-01-01T00:00:00.000Z")


def compact(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def dict_events(body: bytes) -> Any:
    try:
        return [encode(event) for event in dict_path(inbound(body))]
    except Unmappable as exc:
        return ("unmappable", exc.reason)


def typed_events(body: bytes) -> list[bytes] | None:
    """The typed path's encoded events, or None when it declines. Every reader is tried,
    not only the one the body's event picks (a wrong pick must decline too): those that
    read the body must agree."""
    found = []
    for reader in READERS:
        try:
            found.append([encode(event) for event in reader(inbound(body))])
        except DECLINED:
            continue
    assert all(events == found[0] for events in found)
    picked = typed.typed_reader(body)
    if picked is not None and found:
        assert [encode(event) for event in picked(inbound(body))] == found[0]
    return found[0] if found else None


def as_json(events: Any) -> Any:
    """Events compared as JSON (objects unordered: the pass-through's key order is relay's)."""
    return [json.loads(event) for event in events] if type(events) is list else events


def agrees(body: bytes) -> bool:
    """The typed path declines, or gives the dict path's events (as JSON); True if it read
    the body."""
    found = typed_events(body)
    if found is None:
        return False
    assert as_json(found) == as_json(dict_events(body))
    return True


def test_every_message_conversation_and_contact_fixture_is_read_typed_to_the_byte() -> None:
    # 18 message, 5 conversation (and an automation rule's), 2 contact fixtures
    assert len(TYPED_FIXTURES) == 26
    for fixture in TYPED_FIXTURES:
        body = compact(json.loads((FIXTURES / fixture).read_text()))
        found = typed_events(body)
        assert found is not None, f"the typed path declined {fixture}"
        assert found == dict_events(body), fixture  # Chatwoot's order: the same bytes


def fixtures() -> list[Path]:
    return sorted((FIXTURES / "chatwoot").glob("*.json"))


@pytest.mark.parametrize("path", fixtures(), ids=lambda path: path.stem)
def test_every_fixture_is_read_as_the_dict_path_reads_it_or_declined(path: Path) -> None:
    for body in (path.read_bytes(), compact(json.loads(path.read_text()))):
        agrees(body)


def test_what_the_typed_path_declines() -> None:
    body = json.loads((FIXTURES / "chatwoot/message_created.json").read_text())

    def declined(edit: Any) -> bool:
        bent = copy.deepcopy(body)
        edit(bent)
        return typed_events(compact(bent)) is None

    assert not declined(lambda b: None)
    assert declined(lambda b: b.update({"nexloo_version": "2"}))  # a key relay does not know
    assert declined(lambda b: b.update({" id": b.pop("id")}))  # stray whitespace
    assert declined(lambda b: b["conversation"].update({"tenant": 1}))
    assert declined(lambda b: b.pop("conversation"))  # the automation shape's reader
    assert declined(lambda b: b["conversation"].pop("id"))  # an empty conversation's
    assert declined(lambda b: b.update({"event": "conversation_updated"}))
    assert declined(lambda b: b.update({"event": 7}))
    assert declined(lambda b: b["conversation"].update({"messages": [1]}))
    # a copy's key the reader needs, not sent as spelt: the dict path looks for it padded
    assert declined(lambda b: b["conversation"]["messages"][0].pop("status") and b.pop("status", 0))
    # a copy's keys the reader does not need are skipped, whatever they are
    assert not declined(lambda b: b["conversation"]["messages"][0].update({"new_key": [1]}))

    def account_only_in_the_copy_padded(b: dict[str, Any]) -> None:
        del b["account"]
        copy_ = b["conversation"]["messages"][0]
        copy_[" account_id"] = copy_.pop("account_id")

    assert declined(account_only_in_the_copy_padded)
    bent = copy.deepcopy(body)
    account_only_in_the_copy_padded(bent)
    assert json.loads(dict_events(compact(bent))[0])["data"]["account"] == {"id": "7"}


@pytest.mark.parametrize(
    "fixture",
    [
        "chatwoot/message_created.json",
        "chatwoot/message_updated_csat_submitted.json",
        "chatwoot/conversation_updated.json",
        "chatwoot/contact_updated.json",
    ],
)
def test_every_key_padded_in_turn_agrees(fixture: str) -> None:
    """Each key of each object with stray whitespace (alone, or next to its exact twin):
    the dict path finds it stripped; the typed path declines or finds the same."""
    original = json.loads((FIXTURES / fixture).read_text())
    for at, obj in enumerate(json_objects(original)):
        for key in list(obj):
            for spelled, keep in [(f" {key}", False), (f"{key}\t", True)]:
                body = copy.deepcopy(original)
                bent = json_objects(body)[at]
                bent[spelled] = bent[key] if keep else bent.pop(key)
                agrees(compact(body))


@pytest.mark.parametrize(
    "fixture", ["chatwoot/conversation_updated.json", "chatwoot/contact_updated.json"]
)
def test_update_times_without_changed_attributes_agree(fixture: str) -> None:
    """Without ``changed_attributes`` an update's time is the body's own: ``updated_at``,
    else ``created_at``."""
    for updated, created in [(1784035081, 1784034760), (None, 1784034760), (None, None)]:
        body = json.loads((FIXTURES / fixture).read_text())
        del body["changed_attributes"]
        body["updated_at"], body["created_at"] = updated, created
        raw = compact(body)
        assert agrees(raw), (updated, created)
        found = json.loads((typed_events(raw) or [b""])[0])
        if updated is None and created is not None and fixture.endswith("contact_updated.json"):
            assert found["time"] == "2026-07-14T13:12:40.000Z"


def test_a_user_without_a_name_is_named_by_their_available_name() -> None:
    body = json.loads((FIXTURES / "chatwoot/message_created_outgoing_agent.json").read_text())
    body["sender"]["name"] = " "
    body["sender"]["available_name"] = "Ana (support)"
    raw = compact(body)
    assert agrees(raw)
    actor = json.loads((typed_events(raw) or [b""])[0])["data"]["actor"]
    assert actor["type"] == "agent" and actor["name"] == "Ana (support)"


def test_a_message_without_an_id_matches_no_copy() -> None:
    """A copy is the message's only by id: with none on either side, nothing matches."""
    body = json.loads((FIXTURES / "chatwoot/message_updated.json").read_text())
    body.pop("status", None)
    body["id"] = None
    body["conversation"]["messages"][0]["id"] = None
    raw = compact(body)
    assert agrees(raw)
    message = json.loads((typed_events(raw) or [b""])[0])["data"]["message"]
    assert "status" not in message and "updated_at" not in message


def test_a_message_fixture_reaches_the_typed_path_through_the_provider(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    picked: list[Any] = []

    def recording(body: bytes) -> Any:
        reader = typed.typed_reader(body)
        picked.append(reader)
        return reader

    monkeypatch.setattr(chatwoot, "typed_reader", recording)
    for fixture, reader in [
        ("message_created", typed.read_message),
        ("conversation_updated", typed.read_conversation),
        ("contact_updated", typed.read_contact),
        ("automation_event_conversation_updated", typed.read_conversation),
        ("conversation_typing_on", None),
        ("webwidget_triggered", None),
    ]:
        body = (FIXTURES / f"chatwoot/{fixture}.json").read_bytes()
        assert [encode(e) for e in chatwoot.normalize(inbound(body))] == dict_events(body)
        assert picked.pop() is reader, fixture


@pytest.mark.parametrize(
    "body",
    [
        b'{"event":"message_created","content":"\\ud83d","conversation":{"id":1}}',
        b'{"event":"message_created",' + b'"content":' + b"[" * 5000 + b"]" * 5000 + b"}",
        b'{"event":"message_created"',
        b'["message_created"]',
    ],
    ids=["lone surrogate", "deep nesting", "cut short", "not an object"],
)
def test_bodies_msgspec_will_not_take_fall_back_with_the_same_answer(body: bytes) -> None:
    assert typed_events(body) is None
    from tests.unit.providers.chatwoot.reference import normalize_tolerant

    def answer(run: Any) -> Any:
        try:
            return [json.loads(encode(e)) for e in run(inbound(body))]
        except ValueError as exc:  # MalformedBody / Unmappable
            return (type(exc).__name__, str(exc))

    assert answer(chatwoot.normalize) == answer(normalize_tolerant)


# every key a reader looks for, in any object of a message body
READ_KEYS = sorted(
    parts.PERSON_SEEN
    | parts.CONVERSATION_SEEN
    | content.MESSAGE_SEEN
    | parts.META_KEYS
    | {"channel_type", "external_echo", "deleted", "submitted_values", "in_reply_to"}
    | {"external_error", "items", "template_params", "previous_value", "current_value"}
)
VALUES: list[Any] = [
    None,
    "",
    " ",
    "x",
    "Deleted",
    0,
    7,
    -1.5,
    True,
    [],
    {},
    [1, "a"],
    {"id": 3, "name": "n", "type": "user"},
    "2026-07-14T13:18:01.865Z",
    1784035081,
    1784035081.5,
]


@pytest.mark.parametrize(
    "fixture",
    [
        "chatwoot/message_created.json",
        "chatwoot/message_updated_deleted.json",
        "chatwoot/message_updated_csat_submitted.json",
        "chatwoot/conversation_updated.json",
        "chatwoot/conversation_created.json",
        "chatwoot/contact_updated.json",
    ],
)
def test_every_read_key_in_every_object_agrees(fixture: str) -> None:
    original = json.loads((FIXTURES / fixture).read_text())
    objects = len(json_objects(original))
    read = 0
    rng = random.Random(fixture)
    for at in range(objects):
        for key in READ_KEYS:
            for value in rng.sample(VALUES, 4):
                body = copy.deepcopy(original)
                json_objects(body)[at][key] = copy.deepcopy(value)
                read += agrees(compact(body))
    assert read > objects * len(READ_KEYS)  # mostly read typed, not declined


def test_the_conversation_in_any_key_order_gives_the_same_json() -> None:
    original = json.loads((FIXTURES / "chatwoot/message_created.json").read_text())
    expected = as_json(dict_events(compact(original)))
    rng = random.Random(16)
    for _ in range(20):
        body = copy.deepcopy(original)
        items = list(body["conversation"].items())
        rng.shuffle(items)
        body["conversation"] = dict(items)
        raw = compact(body)
        found = typed_events(raw)
        assert found is not None
        assert as_json(found) == expected == as_json(dict_events(raw))
        kept = json.loads(found[0])["data"]["extensions"]["chatwoot"]["conversation"]
        order = [key for key in parts.CONVERSATION_PASS if key in kept]
        assert list(kept)[: len(order)] == order  # relay's order, whatever the body's


@pytest.mark.parametrize(
    ("where", "key"),
    [("top", "id"), ("top", "content"), ("conversation", "status"), ("copy", "status")],
)
def test_a_key_sent_twice_reads_as_the_dict_path_reads_it(where: str, key: str) -> None:
    """JSON with a duplicate key: the last copy counts, for the dict decode as for the
    Structs'."""
    body = json.loads((FIXTURES / "chatwoot/message_updated.json").read_text())
    body.pop("status", None)  # so the copy's status is read
    obj = {
        "top": body,
        "conversation": body["conversation"],
        "copy": body["conversation"]["messages"][0],
    }[where]
    marker = "MARKER_VALUE"
    obj[key] = marker
    raw = compact(body)
    twice = raw.replace(
        f'"{key}":"{marker}"'.encode(), f'"{key}":"first","{key}":"second"'.encode(), 1
    )
    assert twice != raw
    assert agrees(twice)
    assert b'"second"' in b"".join(typed_events(twice) or [])


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fixture=st.sampled_from(TYPED_FIXTURES),
    edits=st.lists(
        st.tuples(
            st.integers(0, 10_000),
            st.sampled_from(["set", "drop", "add"]),
            st.sampled_from(READ_KEYS),
            JSON,
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_bent_message_bodies_agree(fixture: str, edits: list[tuple[int, str, str, Any]]) -> None:
    """Any object of a message body given an arbitrary value for a key, or losing one, or
    gaining one a reader looks for: the typed path declines or agrees."""
    body = json.loads((FIXTURES / fixture).read_text())
    for which, edit, key, value in edits:
        objects = json_objects(body)
        obj = objects[which % len(objects)]
        if edit == "drop" and obj:
            del obj[list(obj)[which % len(obj)]]
        elif edit == "set" and obj:
            obj[list(obj)[which % len(obj)]] = value
        else:
            obj[key] = value
    agrees(compact(body))
