from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.providers.coerce import (
    as_e164,
    as_str,
    as_time,
    get,
    get_str,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1651065481865, "2022-04-27T13:18:01.865Z"),  # PlugChat: epoch milliseconds
        (1651065481, "2022-04-27T13:18:01.000Z"),  # epoch seconds
        (1651065481.5, "2022-04-27T13:18:01.500Z"),  # Chatwoot updated_at is a float
        ("1651065481865", "2022-04-27T13:18:01.865Z"),
        ("2023-01-01 18:12:45 UTC", "2023-01-01T18:12:45.000Z"),  # Chatwoot doc format
        ("2024-05-02T12:00:00.123Z", "2024-05-02T12:00:00.123Z"),
        ("2024-05-02T09:00:00-03:00", "2024-05-02T12:00:00.000Z"),
        ("2024-05-02T12:00:00", "2024-05-02T12:00:00.000Z"),  # naive means UTC
        ({"timestamp": "2024-05-02T12:00:00Z"}, "2024-05-02T12:00:00.000Z"),
        ("Tue Mar 03 2020 18:37:38 GMT-0700 (Mountain Standard Time)", "2020-03-04T01:37:38.000Z"),
        ("Tue Mar 03 2020 nonsense", None),
        ("", None),
        (None, None),
        (True, None),
        (0, None),
        (-5, None),
        (10**30, None),
        (float("nan"), None),
    ],
)
def test_as_time(value: Any, expected: str | None) -> None:
    assert as_time(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("554499999999", "+554499999999"),
        (554499999999, "+554499999999"),
        ("+55 (44) 99999-9999", "+5544999999999"),
        ("123456789012345@lid", None),  # a WhatsApp LID is an id, not a phone
        ("120363019502650977-group", None),
        ("5544999999999@s.whatsapp.net", None),
        ("abc", None),
        ("1234", None),
        ("0044999999999", None),
        ("²²²²²²²²²", None),  # str.isdigit() says yes to superscripts
        ("١٢٣٤٥٦٧٨٩٠", None),
        (None, None),
    ],
)
def test_as_e164(value: Any, expected: str | None) -> None:
    assert as_e164(value) == expected


def test_get_tolerates_keys_with_stray_spaces() -> None:
    payload = {"operatorReport ": "Relato", "name": None, " id ": 1, "\tx": 2}
    assert get(payload, "operatorReport") == "Relato"
    assert get(payload, "id") == 1
    assert get(payload, "x") == 2
    assert get(payload, "name") is None
    assert get(payload, "missing") is None
    assert get("not an object", "x") is None


def test_as_str_coerces_scalars_only() -> None:
    assert as_str(12) == "12"
    assert as_str(12.0) == "12"
    assert as_str("  ") is None
    assert as_str({"a": 1}) is None
    assert (as_str(True), as_str(False)) == ("true", "false")  # JSON's spelling
    assert get_str({"id": 7}, "display_id", "id") == "7"


@given(json_values)
def test_readers_never_raise(value: Any) -> None:
    as_time(value)
    as_e164(value)
    as_str(value)
    get(value, "x")


@given(
    st.dictionaries(st.text(alphabet=" \t\nab", min_size=1, max_size=4), st.integers()),
    st.text(alphabet="ab", min_size=1, max_size=3),
)
def test_get_finds_a_key_whatever_its_padding(payload: dict[str, int], key: str) -> None:
    padded = [k for k in payload if k.strip() == key]
    if key in payload:
        assert get(payload, key) == payload[key]
    elif padded:
        assert get(payload, key) in [payload[k] for k in padded]
    else:
        assert get(payload, key) is None


def test_get_on_large_objects_indexes_padded_keys_once() -> None:
    from relay.providers.coerce import forget_indexes

    obj = {f"k{i}": i for i in range(100)}
    obj[" wanted "] = "first"
    obj["wanted  "] = "second"
    assert get(obj, "wanted") == "first"  # the first padded spelling wins, as for small ones
    assert get(obj, "k7") == 7 and get(obj, "absent") is None
    obj2 = dict(obj, wanted="exact")
    assert get(obj2, "wanted") == "exact"  # an exact key wins over padded ones
    forget_indexes()
    assert get(obj, "wanted") == "first"
