"""The normalizer's shortcuts give exactly what the plain code they replace gives."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from types import MappingProxyType

from hypothesis import example, given
from hypothesis import strategies as st

from relay.providers.coerce import as_e164, as_str, as_time, format_time, get, get_obj, get_str
from relay.providers.extensions import leftovers

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


def _epoch_reference(value: float) -> str | None:
    """The plain code the integer shortcuts replace: datetime's rounding and formatting."""
    seconds = value / 1000 if abs(value) >= 100_000_000_000 else value
    if not 946_684_800 <= seconds <= 7_258_118_400:
        return None
    return format_time(datetime.fromtimestamp(seconds, UTC))


@given(
    st.one_of(
        st.integers(min_value=946_684_000, max_value=7_258_119_000),
        st.integers(min_value=946_684_000_000, max_value=7_258_119_000_000),
        st.floats(min_value=946_684_000, max_value=7_258_119_000),
        st.floats(min_value=946_684_000_000, max_value=7_258_119_000_000),
        st.integers(min_value=946_684_800, max_value=7_258_118_399).map(lambda n: n + 0.9995),
        st.integers(min_value=946_684_800, max_value=7_258_118_399).map(lambda n: n + 0.9999995),
    )
)
def test_epoch_times_match_datetimes_rounding(value: float) -> None:
    assert as_time(value) == _epoch_reference(value)


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
def test_canonical_iso_times_pass_through_as_format_time_would_write_them(
    moment: datetime,
) -> None:
    text = moment.isoformat(timespec="milliseconds") + "Z"
    assert as_time(text) == format_time(moment.replace(tzinfo=UTC))


@example("2026-W29-2T13:18:01.865Z")  # an ISO week date: fromisoformat reads it
@example("2026-02-30T13:18:01.865Z")
@given(st.from_regex(r"[0-9W-]{10}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z", fullmatch=True))
def test_near_canonical_iso_text_is_parsed_not_passed_through(text: str) -> None:
    try:
        expected: str | None = format_time(datetime.fromisoformat(text))
    except ValueError:
        expected = None
    assert as_time(text) == expected


@example("+05544999990001")
@example("5544999990001")
@example("05544999990001")
@example("1234567")
@example("+5544999990001")
@example("+1234567")
@example("+1234567890123456")
@example("+55٣4999990001")
@given(st.text(alphabet="+0123456789 ()-.٣", max_size=18))
def test_e164_shortcut_is_what_the_noise_stripping_says(text: str) -> None:
    digits = re.sub(r"[\s()\-.+]", "", text)
    expected = (
        "+" + digits
        if text.strip()
        and digits.isascii()
        and digits.isdigit()
        and 8 <= len(digits) <= 15
        and digits[0] != "0"
        else None
    )
    assert as_e164(text) == expected
