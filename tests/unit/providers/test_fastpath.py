"""The normalizer's shortcuts give exactly what the plain code they replace gives."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from types import MappingProxyType

from hypothesis import given
from hypothesis import strategies as st

from relay.events import _ID_NAMESPACE, event_id
from relay.providers.extensions import leftovers
from relay.values import as_str, as_time, format_time, get, get_obj, get_str

WHITESPACE = st.sampled_from(
    [
        " ",
        "\t",
        "\n",
        "\r",
        "\x0b",
        "\x0c",
        "\x1c",
        "\x85",
        "\xa0",
        "\u1680",
        "\u2000",
        "\u2028",
        "\u202f",
        "\u3000",
        "a",
        "é",
        "",
    ]
)


@given(st.text(), st.text(), st.text())
def test_event_id_is_uuid5_of_the_namespace(source: str, type_: str, identity: str) -> None:
    name = f"{source}\x1f{type_}\x1f{identity}"
    try:
        expected = str(uuid.uuid5(_ID_NAMESPACE, name))
    except UnicodeEncodeError:  # lone surrogates: both refuse alike
        return
    assert event_id(source, type_, identity) == expected


def test_event_id_known_value() -> None:
    assert event_id("s", "chat.message.created", "message:1:2") == str(
        uuid.uuid5(_ID_NAMESPACE, "s\x1fchat.message.created\x1fmessage:1:2")
    )


@given(st.lists(WHITESPACE, max_size=6).map("".join))
def test_as_str_blank_is_what_strip_says(text: str) -> None:
    assert as_str(text) == (text if text.strip() else None)


@given(
    st.dictionaries(
        st.sampled_from(["a", " a", "a ", "b", "c\t"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.floats(),
            st.text(max_size=3),
            st.sampled_from([" ", "\xa0", "x "]),
            st.just({}),
        ),
    ),
    st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=3),
)
def test_get_str_is_as_str_of_get(obj: dict[str, object], keys: list[str]) -> None:
    expected = next((t for k in keys if (t := as_str(get(obj, k))) is not None), None)
    assert get_str(obj, *keys) == expected
    assert get_str(MappingProxyType(obj), *keys) == expected
    assert get_obj(obj, keys[0]) == get_obj(MappingProxyType(obj), keys[0])


KNOWN = frozenset({"id", "name", "status"})
KEYS = st.sampled_from(["id", " id", "name ", "status", "x", " x", "y", "z\t"])
VALUES = st.one_of(st.none(), st.integers(), st.text(max_size=3), st.just({}), st.just([]))


@given(st.dictionaries(KEYS, VALUES))
def test_leftovers_of_a_dict_match_the_generic_scan(obj: dict[str, object]) -> None:
    # a mappingproxy is not a dict, so it takes the key-by-key scan the dict shortcut replaces
    assert leftovers(obj, KNOWN) == leftovers(MappingProxyType(obj), KNOWN)
    assert list(leftovers(obj, KNOWN) or {}) == list(leftovers(MappingProxyType(obj), KNOWN) or {})


@given(st.integers(min_value=946_684_800_000, max_value=7_258_118_400_000))
def test_epoch_times_format_as_format_time_does(millis: int) -> None:
    moment = datetime.fromtimestamp(millis / 1000, UTC)
    assert as_time(millis) == format_time(moment)
