"""Chatwoot's normalizer gives exactly the frozen tolerant normalizer's events: every
fixture, and fixtures bent in the ways providers bend them (padded keys, nulls, odd
types). PlugChat's padded bodies are compared with its clean ones
(tests/unit/providers/plugchat/test_reading.py)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.cloudevents import encode
from relay.events import CloudEvent
from relay.providers import Inbound, MalformedBody, Unmappable
from relay.providers.chatwoot import content, parts
from relay.providers.chatwoot.fast import normalize_fast as chatwoot_fast
from relay.providers.fast import FALLBACK_ERRORS
from tests.support import FIXTURES, json_objects
from tests.unit.providers.chatwoot.reference import normalize_tolerant as chatwoot_tolerant

Path_ = Callable[[Inbound], list[CloudEvent]]


PATHS: dict[str, tuple[Path_, Path_]] = {
    "chatwoot": (chatwoot_fast, chatwoot_tolerant),
}
# Fixtures the fast path must read itself (not fall back on): what it is built for.
FAST_FIXTURES = {
    f"chatwoot/{name}.json"
    for name in (
        "message_created",
        "message_created_attachment",
        "message_created_attachment_audio",
        "message_created_bot_null_sender",
        "message_created_cards",
        "message_created_contact_card",
        "message_created_location",
        "message_created_multi_attachment",
        "message_created_outgoing_agent",
        "message_created_private_note",
        "message_created_template_params",
        "message_created_whatsapp_echo",
        "message_updated",
        "message_updated_csat_submitted",
        "message_updated_deleted",
        "message_updated_failed_external_error",
        "message_updated_form_submitted",
        "message_updated_input_select",
        "trino_seed_message_created",
        "whitelabel_extra_keys",
        "conversation_created",
        "conversation_created_v4_15_account",
        "conversation_status_changed",
        "conversation_status_changed_snoozed",
        "conversation_updated",
        "contact_created",
        "contact_updated",
    )
}


def fixtures() -> list[tuple[str, str, str | None]]:
    found = []
    for provider in PATHS:
        for path in sorted((FIXTURES / provider).rglob("*.json")):
            relative = path.relative_to(FIXTURES).as_posix()
            if "/signed/" in relative and not relative.endswith(".body.json"):
                continue
            found.append((provider, relative, None))
    return found


def inbound(body: bytes, kind: str | None) -> Inbound:
    return Inbound(source="src", body=body, received_at="2030-01-01T00:00:00.000Z", kind=kind)


def outcome(run: Path_, body: bytes, kind: str | None) -> Any:
    """What a path made of a body: the encoded events, or the refusal."""
    try:
        return [encode(event) for event in run(inbound(body, kind))]
    except Unmappable as exc:
        return ("unmappable", exc.reason, exc.detail)
    except MalformedBody as exc:
        return ("malformed", str(exc))


def fast_outcome(provider: str, body: bytes, kind: str | None) -> Any:
    """The fast path's result, or None when it declined."""
    fast, _ = PATHS[provider]
    try:
        return outcome(fast, body, kind)
    except FALLBACK_ERRORS:
        return None


def compact(path: Path) -> bytes:
    return json.dumps(
        json.loads(path.read_text()), ensure_ascii=False, separators=(",", ":")
    ).encode()


@pytest.mark.parametrize(("provider", "relative", "kind"), fixtures())
def test_every_fixture_gives_the_same_events_both_ways(
    provider: str, relative: str, kind: str | None
) -> None:
    _, tolerant = PATHS[provider]
    path = FIXTURES / relative
    for body in (path.read_bytes(), compact(path)):
        fast = fast_outcome(provider, body, kind)
        if relative in FAST_FIXTURES:
            assert fast is not None, f"the fast path declined {relative}"
        if fast is not None:
            assert fast == outcome(tolerant, body, kind)


def test_the_fast_path_covers_what_it_is_built_for() -> None:
    known = {relative for _, relative, _ in fixtures()}
    assert known >= FAST_FIXTURES  # a renamed fixture must not silently leave the list


# Keys the readers look for, some in no fixture: an edit may add one anywhere.
READ_KEYS = {
    "chatwoot": sorted(
        parts.CONTACT_KEYS
        | parts.CONVERSATION_KEYS
        | content.MESSAGE_KEYS
        | {"available_name", "avatar_url", "channel_type", "display_id", "external_echo"}
        | {"deleted", "submitted_values", "in_reply_to", "external_error", "items", "team"}
        | {"assignee", "sender", "template_params", "current_conversation", "messages"}
        | {"previous_value", "current_value", "account_id", "conversation"}
    ),
}
ODD_VALUES = [
    None,
    "",
    " ",
    0,
    7,
    1.5,
    True,
    [],
    {},
    "x",
    "deleted",
    [1],
    {"a": 1},
    {"id": 3, "name": "n", "type": "user"},
    [{"value": "v", "title": "t"}],
    "2026-07-14T13:18:01Z",
    1784035081,
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fixture=st.sampled_from(sorted(FAST_FIXTURES)),
    edits=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=10_000),
            st.integers(min_value=0, max_value=10_000),
            st.sampled_from(["pad", "drop", "odd", "add"]),
            st.sampled_from(ODD_VALUES),
            st.sampled_from([" ", "\t", "\xa0", "\u3000"]),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_bent_fixtures_give_the_same_events_both_ways(
    fixture: str, edits: list[tuple[int, int, str, Any, str]]
) -> None:
    """Pad a key, drop one or give it an odd value, anywhere in the body: the fast path
    either declines or gives what the tolerant one gives."""
    provider = fixture.split("/")[0]
    body = json.loads((FIXTURES / fixture).read_text())
    for which, key_at, edit, odd, space in edits:
        objects = [obj for obj in json_objects(body) if obj]
        obj = objects[which % len(objects)]
        key = list(obj)[key_at % len(obj)]
        if edit == "pad":
            obj[key + space if key_at % 2 else space + key] = obj.pop(key)
        elif edit == "add":
            keys = READ_KEYS[provider]
            obj[keys[key_at % len(keys)]] = copy.deepcopy(odd)
        elif edit == "drop":
            del obj[key]
        else:
            obj[key] = copy.deepcopy(odd)
    raw = json.dumps(body, ensure_ascii=bool(key_at % 3)).encode()
    fast = fast_outcome(provider, raw, None)
    if fast is not None:
        assert fast == outcome(PATHS[provider][1], raw, None)


# Keys whose value is an object or list to the readers: set to an object too.
OBJECTS = {
    "sender",
    "assignee",
    "meta",
    "account",
    "inbox",
    "contact",
    "conversation",
    "team",
    "messages",
    "attachments",
    "content_attributes",
    "additional_attributes",
    "contact_inbox",
    "custom_attributes",
    "changed_attributes",
    "template_params",
    "submitted_values",
    "items",
    "current_conversation",
}
TIMES = {"created_at", "updated_at", "last_activity_at", "timestamp", "snoozed_until", "momment"}
VALUES: dict[str, tuple[Any, ...]] = {
    **{key: ("x", None, {"id": 3, "name": "n", "type": "user"}) for key in OBJECTS},
    **{key: (None, 1784035081, "2026-07-14T13:18:01.865Z") for key in TIMES},
}
SWEPT = [
    "chatwoot/message_created.json",
    "chatwoot/conversation_updated.json",
    "chatwoot/contact_updated.json",
]


@pytest.mark.parametrize(
    "fixture", ["chatwoot/conversation_updated.json", "chatwoot/contact_updated.json"]
)
def test_update_times_without_changed_attributes_agree(fixture: str) -> None:
    """Without ``changed_attributes`` an update's time comes from the body's own times."""
    for updated, created in [(1784035081, 1784034760), (None, 1784034760), (None, None)]:
        body = json.loads((FIXTURES / fixture).read_text())
        del body["changed_attributes"]
        body["updated_at"], body["created_at"] = updated, created
        raw = json.dumps(body).encode()
        fast = fast_outcome("chatwoot", raw, None)
        assert fast is not None
        assert fast == outcome(PATHS["chatwoot"][1], raw, None)


@pytest.mark.parametrize("fixture", SWEPT)
def test_every_read_key_in_every_object_gives_the_same_events_both_ways(fixture: str) -> None:
    """Each key a reader looks for, set in each object of the body (one at a time), to a
    text or null (an object too for keys that hold one, times for time keys): the fast path
    declines or agrees."""
    provider = fixture.split("/")[0]
    original = (FIXTURES / fixture).read_text()
    objects = len(json_objects(json.loads(original)))
    agreed = 0
    for at in range(objects):
        for key in READ_KEYS[provider]:
            for value in VALUES.get(key, ("x", None)):
                body = json.loads(original)
                json_objects(body)[at][key] = value
                raw = json.dumps(body).encode()
                fast = fast_outcome(provider, raw, None)
                if fast is not None:
                    assert fast == outcome(PATHS[provider][1], raw, None), (at, key, value)
                    agreed += 1
    assert agreed > objects * len(READ_KEYS[provider])  # mostly read by the fast path, not declined


PADDED = sorted(
    f"chatwoot/{name}.json"
    for name in (
        "message_created",
        "message_created_contact_card",
        "message_updated_csat_submitted",
        "message_updated_deleted",
        "conversation_updated",
        "contact_updated",
        "conversation_typing_on",
        "webwidget_triggered",
        "automation_event_conversation_updated",
    )
)


@pytest.mark.parametrize("fixture", PADDED)
def test_every_key_padded_in_turn_gives_the_same_events_both_ways(fixture: str) -> None:
    """Each key of each object, padded (before, after, both; and next to its exact twin),
    one at a time: what the readers find through clean() is what the tolerant readers
    find, extensions included."""
    original = (FIXTURES / fixture).read_text()
    objects = len(json_objects(json.loads(original)))
    compared = 0
    for at in range(objects):
        keys = list(json_objects(json.loads(original))[at])
        for key in keys:
            for spelled, keep in [(f" {key}", False), (f"{key}\t", False), (f" {key} ", True)]:
                body = json.loads(original)
                obj = json_objects(body)[at]
                obj[spelled] = obj[key] if keep else obj.pop(key)
                raw = json.dumps(body).encode()
                fast = fast_outcome("chatwoot", raw, None)
                assert fast is not None
                assert fast == outcome(PATHS["chatwoot"][1], raw, None), (at, spelled)
                compared += 1
    assert compared > objects


def test_a_fast_normalization_leaves_no_index_holding_the_body() -> None:
    from relay.providers import coerce
    from relay.providers.chatwoot import normalize as chatwoot_normalize

    body = json.loads((FIXTURES / "chatwoot/message_created.json").read_text())
    body["content_attributes"] = {f"k{i}": i for i in range(40)}  # large enough to index
    body.update({f" x{i}": i for i in range(70)})  # a top level read through a large view
    raw = json.dumps(body).encode()
    assert fast_outcome("chatwoot", raw, None) is not None
    assert coerce._indexes  # the fast path alone leaves it to its caller
    coerce.forget_indexes()
    chatwoot_normalize(inbound(raw, None))
    assert not coerce._indexes
