"""The typed path's Structs hold exactly the keys of the dict reader's tables, and its
written-out pass-throughs exactly the keys the tables leave to the pass-through."""

from __future__ import annotations

import json

import msgspec
import pytest

from relay.providers.chatwoot import content, parts, shapes, typed_parts


def test_the_dict_readers_tables_are_the_shapes_fields() -> None:
    assert set(shapes.MessageBody.__struct_fields__) == content.MESSAGE_SEEN
    assert set(shapes.ConversationBody.__struct_fields__) == parts.CONVERSATION_SEEN
    assert set(shapes.Person.__struct_fields__) == parts.PERSON_SEEN
    assert set(shapes.Meta.__struct_fields__) == parts.META_KEYS
    assert set(shapes.Small.__struct_fields__) == parts.SMALL_KEYS
    # the copy's keys the reader takes (the rest of a copy is skipped)
    assert set(shapes.Copy.__struct_fields__) == {"id", "status", "updated_at", "account_id"}


def test_the_pass_through_lists_are_what_the_readers_leave_over() -> None:
    assert set(parts.CONVERSATION_PASS) < parts.CONVERSATION_SEEN
    assert set(parts.PERSON_PASS) < parts.PERSON_SEEN
    assert parts.CONVERSATION_KEYS.isdisjoint(parts.CONVERSATION_PASS)
    assert parts.CONTACT_KEYS.isdisjoint(parts.PERSON_PASS)
    assert len(set(parts.CONVERSATION_PASS)) == len(parts.CONVERSATION_PASS)
    assert len(set(parts.PERSON_PASS)) == len(parts.PERSON_PASS)
    assert {"source_id"} == content.MESSAGE_SEEN - content.MESSAGE_KEYS
    # what the canonical objects read: a key moved to the pass-through by mistake is lost
    # from the contact, conversation or message, so name them
    assert {"id", "name", "phone_number", "email", "identifier", "type"} <= parts.CONTACT_KEYS
    assert {"id", "display_id", "status", "meta", "labels", "messages"} <= parts.CONVERSATION_KEYS


def test_the_written_out_pass_throughs_keep_every_listed_key_in_order() -> None:
    conversation = msgspec.json.decode(
        json.dumps({"id": 1, **{key: f"v-{key}" for key in parts.CONVERSATION_PASS}}),
        type=shapes.ConversationBody,
    )
    assert list(typed_parts.conversation_pass(conversation) or {}) == list(parts.CONVERSATION_PASS)
    person = msgspec.json.decode(
        json.dumps({"id": 1, **{key: f"v-{key}" for key in parts.PERSON_PASS}}),
        type=shapes.Person,
    )
    _, found = typed_parts.contact_of(person)
    assert found == {key: f"v-{key}" for key in parts.PERSON_PASS}
    assert list(found) == list(parts.PERSON_PASS)


def test_nulls_and_empty_containers_are_left_out_and_falsy_scalars_kept() -> None:
    values = [None, {}, [], 0, False, ""]
    body = {"id": 1}
    body.update(zip(parts.CONVERSATION_PASS, values, strict=False))
    conversation = msgspec.json.decode(json.dumps(body), type=shapes.ConversationBody)
    assert typed_parts.conversation_pass(conversation) == {
        key: value
        for key, value in zip(parts.CONVERSATION_PASS, values, strict=False)
        if value not in (None, {}, [])
    }


def test_a_leftovers_reader_takes_only_attribute_names() -> None:
    for names in [("class",), ("a b",), ("x);import os;(y",)]:
        with pytest.raises(ValueError, match="not attribute names"):
            typed_parts._leftovers_reader(names)


def test_a_pass_through_name_the_shape_lacks_is_refused_at_import() -> None:
    with pytest.raises(ValueError, match=r"Small has no fields \['nmae'\]"):
        parts._in_order(shapes.Small, "id nmae")
    assert parts._in_order(shapes.Small, "channel_type id") == ("id", "channel_type")
