"""Plain reads give the tolerant reads' values on clean objects, and refuse (Fallback)
an object with a padded key as soon as they reach it."""

from __future__ import annotations

from typing import Any

import pytest

from relay.providers.fast import Fallback
from relay.providers.reads import TOLERANT, plain_reads

PLAIN = plain_reads(frozenset({"id", "name", "items", "inner", "flag"}))
BODY: dict[str, Any] = {
    "id": 7,
    "name": " ",
    "flag": True,
    "inner": {"name": "n", "other": 1},
    "items": [{"id": "a"}, "text", 3],
    "extra": None,
}


@pytest.mark.parametrize(
    ("read", "args"),
    [
        ("get", ("id",)),
        ("get", ("missing",)),
        ("get_str", ("id",)),
        ("get_str", ("name", "id")),  # a blank text is no text
        ("get_str", ("missing", "flag")),
        ("get_obj", ("inner",)),
        ("get_obj", ("id",)),
        ("get_list", ("items",)),
        ("get_list", ("inner",)),
    ],
)
def test_plain_reads_agree_with_the_tolerant_ones_on_clean_objects(
    read: str, args: tuple[str, ...]
) -> None:
    assert getattr(PLAIN, read)(BODY, *args) == getattr(TOLERANT, read)(BODY, *args)


def test_reads_of_what_is_not_an_object_find_nothing() -> None:
    for reads in (PLAIN, TOLERANT):
        assert reads.get("text", "id") is None
        assert reads.get_str(["id"], "id") is None
        assert reads.get_obj(None, "inner") == {}
        assert reads.get_list(3, "items") == []


@pytest.mark.parametrize(
    "reach",
    [
        lambda body: PLAIN.get_obj(body, "inner"),
        lambda body: PLAIN.get_list(body, "items"),
        lambda body: PLAIN.checked(body["inner"]),
    ],
)
def test_a_padded_key_is_refused_where_the_plain_reads_reach_it(reach: Any) -> None:
    body = {"inner": {" name": "n"}, "items": [{"id ": "a"}]}
    body["items"] = [body["inner"]]
    with pytest.raises(Fallback):
        reach(body)
    # the tolerant reads take it as it is and find the padded key
    assert TOLERANT.get_str(TOLERANT.get_obj(body, "inner"), "name") == "n"


def test_leftovers_are_the_unread_keys_in_the_bodys_order() -> None:
    known = frozenset({"id", "name"})
    assert PLAIN.leftovers(BODY, known) == TOLERANT.leftovers(BODY, known)
    assert list(PLAIN.leftovers(BODY, known) or {}) == ["flag", "inner", "items"]
