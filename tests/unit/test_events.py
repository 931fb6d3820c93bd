"""relay/events.py: the event id is exactly ``uuid.uuid5`` of the namespace and its name."""

from __future__ import annotations

import hashlib
import uuid

from hypothesis import given
from hypothesis import strategies as st

from relay.events import _ID_NAMESPACE, event_id


def _uuid5(source: str, type_: str, identity: str) -> str:
    return str(uuid.uuid5(_ID_NAMESPACE, f"{source}\x1f{type_}\x1f{identity}"))


@given(st.text(), st.text(), st.text())
def test_event_id_is_uuid5_of_the_namespace(source: str, type_: str, identity: str) -> None:
    try:
        expected = _uuid5(source, type_, identity)
    except UnicodeEncodeError:  # lone surrogates: both refuse alike
        return
    assert event_id(source, type_, identity) == expected


def test_event_id_known_value() -> None:
    assert event_id("s", "chat.message.created", "message:1:2") == _uuid5(
        "s", "chat.message.created", "message:1:2"
    )


def test_every_variant_digit_is_set_as_uuid5_sets_it() -> None:
    # the 17th hex digit of the name's hash decides the id's variant digit: all sixteen
    names = [f"message:{n}" for n in range(200)]
    digits = {
        hashlib.sha1(_ID_NAMESPACE.bytes + f"s\x1ft\x1f{name}".encode()).hexdigest()[16]
        for name in names
    }
    assert len(digits) == 16
    for name in names:
        assert event_id("s", "t", name) == _uuid5("s", "t", name)
