from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.values import as_bool, as_e164, as_float, as_int, as_str, as_time, first, get, get_str

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
    from relay.values import forget_indexes

    obj = {f"k{i}": i for i in range(100)}
    obj[" wanted "] = "first"
    obj["wanted  "] = "second"
    assert get(obj, "wanted") == "first"  # the first padded spelling wins, as for small ones
    assert get(obj, "k7") == 7 and get(obj, "absent") is None
    obj2 = dict(obj, wanted="exact")
    assert get(obj2, "wanted") == "exact"  # an exact key wins over padded ones
    forget_indexes()
    assert get(obj, "wanted") == "first"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        (-1, True),
        ("true", True),
        (" TRUE ", True),
        ("1", True),
        ("yes", True),
        ("false", False),
        ("False", False),
        (" 0", False),
        ("no", False),
        ("", None),
        ("maybe", None),
        ("2", None),
        (None, None),
        (1.0, None),  # a float is no flag
        ([], None),
        ({}, None),
    ],
)
def test_as_bool(value: Any, expected: bool | None) -> None:
    assert as_bool(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (42, 42),
        (-7, -7),
        (2**70, 2**70),  # a JSON integer as it came
        (3.0, 3),
        (-2.0, -2),
        (3.5, None),
        (True, None),  # booleans are not numbers here
        (False, None),
        ("42", 42),
        (" -42 ", -42),
        ("-5", -5),
        ("-", None),
        ("", None),
        ("4.2", None),
        ("+4", None),
        ("٣", None),  # a digit, but not ASCII
        ("9" * 18, int("9" * 18)),
        ("9" * 19, None),  # longer text is refused before int() sees it
        ("-" + "9" * 18, -int("9" * 18)),
        (None, None),
        ([1], None),
    ],
)
def test_as_int(value: Any, expected: int | None) -> None:
    result = as_int(value)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 1.0),
        (2.5, 2.5),
        (" 2.5 ", 2.5),
        ("1e3", 1000.0),
        (True, None),
        ("nan", None),
        (float("nan"), None),
        ("inf", None),
        (float("-inf"), None),
        ("x", None),
        (None, None),
    ],
)
def test_as_float(value: Any, expected: float | None) -> None:
    assert as_float(value) == expected


def test_first_is_the_first_key_present_and_not_null() -> None:
    payload = {"a": None, " b ": 0, "c": "x"}
    assert first(payload, "a", "b", "c") == 0  # padded key found, 0 is a value
    assert first(payload, "c", "b") == "x"
    assert first(payload, "a", "z") is None
    assert first(None, "a") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (946_684_800, "2000-01-01T00:00:00.000Z"),  # the first instant accepted
        (946_684_799, None),
        (7_258_118_400, "2200-01-01T00:00:00.000Z"),  # the last
        (7_258_118_401, None),
        (99_999_999_999, None),  # seconds: past 2200
        (946_684_800_000, "2000-01-01T00:00:00.000Z"),  # the same instant in milliseconds
    ],
)
def test_the_accepted_epoch_range(value: int, expected: str | None) -> None:
    assert as_time(value) == expected


def test_the_shortest_and_longest_phone_numbers() -> None:
    assert as_e164("12345678") == "+12345678"  # eight digits
    assert as_e164("1234567") is None
    assert as_e164("1" * 15) == "+" + "1" * 15
    assert as_e164("1" * 16) is None
