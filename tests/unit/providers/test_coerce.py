from __future__ import annotations

import enum
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relay.providers.coerce import (
    as_bool,
    as_e164,
    as_float,
    as_int,
    as_str,
    as_time,
    forget_indexes,
    get,
    get_obj,
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
        ("+ 5544999999999", "+5544999999999"),  # a space after the plus: not kept as sent
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
    assert as_str(1.5) == "1.5"  # a fractional number keeps its digits
    assert as_str(-0.25) == "-0.25"
    assert as_str("  ") is None
    assert as_str(" x ") == " x "  # text is kept as sent: only blank text is None
    assert as_str({"a": 1}) is None
    assert (as_str(True), as_str(False)) == ("true", "false")  # JSON's spelling
    assert get_str({"id": 7}, "display_id", "id") == "7"


def test_as_str_reads_a_str_subclass_as_its_text() -> None:
    class Status(enum.StrEnum):  # what a Python caller of relay.normalize may hold
        OPEN = "open"
        BLANK = " "

    assert as_str(Status.OPEN) == "open"
    assert as_str(Status.BLANK) is None


def test_as_str_reads_an_int_subclass_in_decimal() -> None:
    class Code(enum.IntEnum):
        NOT_FOUND = 404

    assert as_str(Code.NOT_FOUND) == "404"


def test_get_passes_over_keys_that_are_not_text() -> None:
    """A caller's mapping may hold other keys; JSON's never do."""
    assert get({1: "one", " name ": "Maria"}, "name") == "Maria"
    assert get({1: "one"}, "name") is None


@pytest.mark.parametrize("zone", ["America/Sao_Paulo", "Asia/Kolkata"])
def test_times_are_utc_whatever_the_machines_time_zone(
    zone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A container started with ``TZ`` set (Brazil's operators do) formats the same times."""
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    assert time.timezone != 0  # the zone is known here (without tzdata it would be UTC)
    try:
        assert as_time("2024-05-02T12:00:00") == "2024-05-02T12:00:00.000Z"  # naive: UTC
        assert as_time("2024-05-02T09:00:00-03:00") == "2024-05-02T12:00:00.000Z"
        assert as_time("2023-01-01 18:12:45 UTC") == "2023-01-01T18:12:45.000Z"
        assert as_time(1651065481865) == "2022-04-27T13:18:01.865Z"
    finally:
        monkeypatch.undo()
        time.tzset()


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
    obj = {f"k{i}": i for i in range(100)}
    obj[" wanted "] = "first"
    obj["wanted  "] = "second"
    assert get(obj, "wanted") == "first"  # the first padded spelling wins, as for small ones
    assert get(obj, "k7") == 7 and get(obj, "absent") is None
    obj2 = dict(obj, wanted="exact")
    assert get(obj2, "wanted") == "exact"  # an exact key wins over padded ones
    forget_indexes()
    assert get(obj, "wanted") == "first"


# --- the value readers, case by case (each row a promise a normalizer rests on) ---


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        (2, True),
        (-1, True),
        ("true", True),
        (" TRUE\n", True),
        ("1", True),
        ("Yes", True),
        ("false", False),
        (" False ", False),
        ("0", False),
        ("NO", False),
        ("maybe", None),
        ("", None),
        ("2", None),
        (None, None),
        (1.0, None),
        ([], None),
        ({}, None),
    ],
)
def test_as_bool_reads_what_providers_send_for_flags(value: Any, expected: bool | None) -> None:
    assert as_bool(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+5544999999999", "+5544999999999"),  # already E.164: kept as sent
        ("5544999999999", "+5544999999999"),  # Z-API: digits only
        (5544999999999, "+5544999999999"),
        ("+55 (44) 99999-9999", "+5544999999999"),
        (" +5544999999999 ", "+5544999999999"),
        ("+5544 9999 9999", "+554499999999"),
        ("12345678", "+12345678"),  # 8 digits: the shortest kept
        ("+12345678", "+12345678"),
        ("123456789012345", "+123456789012345"),  # 15 digits: the longest kept
        ("+123456789012345", "+123456789012345"),
        ("1234567", None),
        ("+1234567", None),
        ("1234567890123456", None),
        ("+1234567890123456", None),
        ("+05544999999", None),  # no country code starts with 0
        ("055449999999", None),
        ("123@lid", None),  # WhatsApp LID: an identifier, not a phone
        ("5544999999999@s.whatsapp.net", None),
        ("120363-group", None),
        ("+55449999999x", None),
        ("".join(map(chr, range(0xFF10, 0xFF1A))), None),  # fullwidth digits: not ASCII ones
        ("", None),
        (None, None),
        (True, None),
    ],
)
def test_as_e164_keeps_real_phone_numbers_only(value: Any, expected: str | None) -> None:
    assert as_e164(value) == expected


def test_get_str_answers_the_first_key_with_text() -> None:
    obj = {"a": None, "b": "  ", "c": 42, "d": "text"}
    assert get_str(obj, "a", "b", "c", "d") == "42"  # null and blank are skipped
    assert get_str(obj, "a", "b", "d") == "text"
    assert get_str(obj, "a", "b") is None
    assert get_str({" name ": "padded"}, "name") == "padded"
    assert get_str({"x": True}, "x") == "true"  # scalars in their JSON spelling
    assert get_str({"x": [1], "y": {"z": 1}}, "x", "y") is None  # containers are not text
    assert get_str(None, "a") is None


def test_get_obj_answers_objects_only() -> None:
    inner = {"k": 1}
    assert get_obj({"o": inner}, "o") is inner
    assert get_obj({" o\t": inner}, "o") is inner
    assert get_obj({"o": [1]}, "o") == {}
    assert get_obj({"o": "text"}, "o") == {}
    assert get_obj({}, "o") == {}
    assert get_obj("not an object", "o") == {}


def _scan(obj: dict[str, Any], key: str) -> Any:
    """The reference: the exact key, else the first key (as sent) that strips to it."""
    if key in obj:
        return obj[key]
    for candidate, value in obj.items():
        if candidate.strip() == key:
            return value
    return None


_pads = st.text(alphabet=" \t\n", max_size=2)
_bases = st.sampled_from(["a", "aa", "ab", "ba", "b", "k\x00a", "x"])
_large_keys = st.lists(
    st.tuples(_pads, _bases, _pads, st.integers(0, 9)).map(
        lambda t: f"{t[0]}{t[1]}{t[3] if t[3] > 4 else ''}{t[2]}"
    ),
    min_size=33,
    max_size=160,
)


@given(_large_keys, st.sampled_from(["a", "aa", "ab", "b", "a5", "k\x00a", "x", "zz", ""]))
def test_get_on_a_large_object_finds_what_the_plain_scan_finds(keys: list[str], key: str) -> None:
    obj = {k: i for i, k in enumerate(keys)}
    try:
        assert get(obj, key) == _scan(obj, key)
        assert get(obj, key) == _scan(obj, key)  # again, from the index built the first time
    finally:
        forget_indexes()


def test_a_key_met_inside_many_keys_is_found_through_the_full_index() -> None:
    # 100 keys merely containing "a" before the one that strips to it: past the joined
    # text's candidate limit, the full index answers, with the first padded spelling
    obj = {f"a{i}": i for i in range(100)} | {"  a ": "first", "a  ": "second"}
    try:
        assert get(obj, "a") == "first"
        assert get(obj, "a7") == 7 and get(obj, "b") is None
        obj2 = {f"ba{i}": i for i in range(100)} | {"\ta": "found"}
        assert get(obj2, "a") == "found"
    finally:
        forget_indexes()


def test_a_large_object_whose_keys_hold_the_separator_is_still_read() -> None:
    obj = {f"k{i}\x00": i for i in range(40)} | {" wanted ": "yes"}
    try:
        assert get(obj, "wanted") == "yes"
        assert get(obj, "k3\x00") == 3 and get(obj, "k3") is None
    finally:
        forget_indexes()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (7, 7),
        (-7, -7),
        (7.0, 7),
        (7.5, None),
        ("42", 42),
        (" 42 ", 42),
        ("-42", -42),
        ("-5", -5),  # one digit after the sign
        ("-x5", None),
        ("+42", None),
        ("4.2", None),
        ("-", None),
        ("", None),
        ("abc", None),
        ("123456789012345678", 123456789012345678),  # 18 digits: the longest read
        ("-123456789012345678", -123456789012345678),
        ("1234567890123456789", None),
        (True, None),  # a flag is not a number
        (None, None),
        (float("inf"), None),
        ([], None),
    ],
)
def test_as_int_reads_integral_numbers_and_their_text(value: Any, expected: int | None) -> None:
    found = as_int(value)
    assert found == expected and type(found) is type(expected)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0.0),
        (7, 7.0),
        (-2.5, -2.5),
        (" 2.5 ", 2.5),
        ("1e3", 1000.0),
        ("-4", -4.0),
        ("nan", None),  # not a number a consumer can use
        (float("nan"), None),
        ("inf", None),
        (float("-inf"), None),
        ("abc", None),
        ("", None),
        (True, None),
        (None, None),
        ({}, None),
    ],
)
def test_as_float_reads_finite_numbers_only(value: Any, expected: float | None) -> None:
    found = as_float(value)
    assert found == expected and type(found) is type(expected)


def test_missed_lookups_on_a_large_object_cost_one_join_not_a_strip_per_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The linear-time promise (issue 16): a large object's keys are joined once and each
    # missed lookup is a C-speed find; the full strip index is built only when a lookup
    # meets more than a few keys merely containing it, and then once.
    from relay.providers import coerce

    joins: list[int] = []
    indexes: list[int] = []
    keys_text, padded_keys = coerce._keys_text, coerce._padded_keys
    monkeypatch.setattr(coerce, "_keys_text", lambda obj: joins.append(1) or keys_text(obj))
    monkeypatch.setattr(coerce, "_padded_keys", lambda obj: indexes.append(1) or padded_keys(obj))
    obj = {f"k{i}": i for i in range(100)} | {" wanted ": "padded"}
    try:
        assert get(obj, "absent") is None
        assert get(obj, "wanted") == "padded"
        assert get(obj, "other") is None
        assert (len(joins), len(indexes)) == (1, 0)  # joined once, no index
        assert get(obj, "k") is None  # a key inside 100 others: past the candidate limit
        assert get(obj, "k") is None
        assert get(obj, "k5") == 5
        assert (len(joins), len(indexes)) == (1, 1)  # the index built once, then reused
        assert get(obj, "wanted") == "padded"
    finally:
        forget_indexes()


def _reference_time(seconds: float) -> str | None:
    """What ``as_time`` promises for an epoch number, by ``datetime`` (no shortcut)."""
    if not 946_684_800 <= seconds <= 7_258_118_400:  # 2000-01-01 .. 2200-01-01
        return None
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="milliseconds").removesuffix("+00:00") + "Z"


@given(st.integers(min_value=900_000_000, max_value=7_300_000_000))
def test_epoch_seconds_read_as_datetime_formats_them(seconds: int) -> None:
    assert as_time(seconds) == _reference_time(seconds)
    assert as_time(str(seconds)) == _reference_time(seconds)


@given(st.integers(min_value=900_000_000_000, max_value=7_300_000_000_000))
def test_epoch_milliseconds_read_as_datetime_formats_them(millis: int) -> None:
    expected = _reference_time(millis / 1000)
    assert as_time(millis) == expected
    assert as_time(float(millis)) == expected


@given(st.floats(min_value=9e8, max_value=7.3e9, allow_nan=False))
def test_fractional_epoch_seconds_read_as_datetime_formats_them(seconds: float) -> None:
    assert as_time(seconds) == _reference_time(seconds)


@pytest.mark.parametrize(
    "seconds", [1_784_035_199.9999997, 1_784_073_599.9999997, 946_684_800.0000004]
)
def test_a_fraction_that_rounds_up_to_the_next_second_carries_into_it(seconds: float) -> None:
    assert as_time(seconds) == _reference_time(seconds)


@pytest.mark.parametrize(
    "seconds",
    [946_684_800, 7_258_118_400, 1_784_073_599, 1_784_073_600, 951_782_400, 4_107_542_399],
)
def test_epoch_bounds_and_day_edges_read_as_datetime_formats_them(seconds: int) -> None:
    """The range's ends, 2026-07-15 00:00:00 and the second before it, 2000-02-29 00:00:00,
    2100-02-28 23:59:59 (each also as milliseconds, with .999 and just under a whole second)."""
    for value in (seconds, seconds * 1000, seconds + 0.999, seconds - 0.0005):
        assert as_time(value) == _reference_time(value if value < 1e11 else value / 1000)
