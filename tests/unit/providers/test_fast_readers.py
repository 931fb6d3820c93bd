"""The shared fast readers (relay/providers/fast.py) answer exactly what the tolerant
readers they stand in for answer: ``clean`` what ``coerce.get`` finds, ``passthrough`` what
``extensions.leftovers`` keeps, ``time_of`` what ``as_time`` says."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from relay.providers import fast
from relay.providers.coerce import as_time, get
from relay.providers.extensions import leftovers
from relay.providers.fast import clean, passthrough, read, time_of

KNOWN = frozenset({"id", "name", "status", "meta"})
# keys as providers bend them: known ones, padded ones, unknown ones
KEYS = st.sampled_from(
    [
        "id",
        " id",
        "id ",
        "\tid",
        "name",
        "name\xa0",
        " name ",
        "status",
        "x",
        " x",
        "meta",
        "y",
        "z",
        "w",
    ]
)
VALUES = st.one_of(st.none(), st.integers(), st.text(max_size=3), st.just({}), st.just([]))


def objects(max_size: int = 8) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(KEYS, VALUES, max_size=max_size)


@example({" id": 1, "id ": 2})  # the first padded spelling wins
@example({" id": 1, "id": 2})  # the exact key over a padded one
@example({"id": None, " id": 2})  # a present exact key, even null
@given(objects())
def test_clean_finds_what_the_tolerant_get_finds(obj: dict[str, Any]) -> None:
    view = clean(obj, KNOWN)
    for key in ["id", "name", "status", "meta", "x", "y", "absent"]:
        assert view.get(key) == get(obj, key), key
    assert clean(view, KNOWN).get("id") == get(obj, "id")  # cleaning twice changes nothing


@given(st.dictionaries(st.sampled_from([f" k{i}" for i in range(80)] + ["id"]), VALUES))
def test_a_large_object_is_read_as_the_tolerant_get_reads_it(obj: dict[str, Any]) -> None:
    obj = {**{f"big{i}": i for i in range(70)}, **obj}  # past the shape cache's size
    view = clean(obj, KNOWN)
    for key in ["id", "k3", "k79", "big5", "absent"]:
        assert view.get(key) == get(obj, key), key
    assert clean(view, KNOWN) is view


def test_anything_but_an_object_reads_as_an_empty_one() -> None:
    for value in [None, 1, "x", [], [{"id": 1}]]:
        assert clean(value, KNOWN).get("id") is None


@example({"y": 1, "x": 2, "id": 3})  # the body's order, not any other
@given(objects(12))
def test_passthrough_keeps_what_leftovers_keeps_in_the_same_order(obj: dict[str, Any]) -> None:
    for _ in range(2):  # the second time from the cached shape
        found = passthrough(obj, KNOWN)
        assert found == leftovers(obj, KNOWN)
        assert list(found or {}) == list(leftovers(obj, KNOWN) or {})


@example({" id": 1, "x": None, "y": 2})
@example({"id": 1, "y": {}, "z": 3})
@given(st.one_of(objects(12), st.none(), st.integers()))
def test_read_is_clean_and_passthrough_with_one_look(obj: Any) -> None:
    for _ in range(2):  # the second time from the cached shape
        view, found = read(obj, KNOWN)
        assert found == passthrough(obj, KNOWN)
        assert list(found or {}) == list(passthrough(obj, KNOWN) or {})
        for key in ["id", "name", "status", "meta", "x", "y", "absent"]:
            assert view.get(key) == clean(obj, KNOWN).get(key), key


def test_read_of_a_large_object_is_clean_and_passthrough() -> None:
    obj = {**{f" k{i}": i for i in range(300)}, "id": 1}
    view, found = read(obj, KNOWN)
    assert found == passthrough(obj, KNOWN)
    assert view.get("k7") == clean(obj, KNOWN).get("k7") == 7


def test_passthrough_of_many_unknown_keys_counts_what_it_leaves_out() -> None:
    obj = {f"k{i}": i for i in range(300)}
    assert passthrough(obj, KNOWN) == leftovers(obj, KNOWN)
    assert passthrough([1], KNOWN) is None


def test_the_shape_cache_is_bounded() -> None:
    for i in range(fast._MAX_SHAPES + 10):
        passthrough({f"k{i}": 1}, KNOWN)
    assert len(fast._shapes) <= fast._MAX_SHAPES


@example(1784035082.9999996)  # rounds up into the next second
@example(7_258_118_400.0)
@example(1_784_035_199.9999998)  # rounds up into the next minute
@example(946_684_799)
@example(7_258_118_401)
@example(float("nan"))
@example(True)
@given(
    st.one_of(
        st.integers(min_value=946_684_000, max_value=7_258_119_000),
        st.floats(min_value=946_684_000, max_value=7_258_119_000),
        st.integers(min_value=946_684_800, max_value=7_258_118_399).map(lambda n: n + 0.9995),
        st.integers(min_value=946_684_800_000, max_value=7_258_118_400_000),
    )
)
def test_epoch_times_are_what_as_time_says(value: float) -> None:
    assert time_of(value) == as_time(value)
    assert time_of(value) == as_time(value)  # and again from the minute cache


@example("2026-07-14T13:18:01.865Z")
@example("2026-07-14T13:18:60.865Z")  # no second 60
@example("2026-02-30T13:18:01.865Z")
@example("2026-07-14T24:00:01.865Z")
@example("2026-07-14 13:18:01.865Z")
@given(
    st.from_regex(r"20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-6][0-9]:[0-6][0-9]\.[0-9]{3}Z")
)
def test_canonical_text_times_are_what_as_time_says(text: str) -> None:
    assert time_of(text) == as_time(text)
    assert time_of(text) == as_time(text)  # and again once its minute is known valid
