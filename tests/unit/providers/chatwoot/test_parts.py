"""The shortcuts the Chatwoot part readers take for their common inputs give what the
general readers give: an id or text read by ``text_of``, an E.164 phone kept as sent."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from relay.providers.chatwoot import conversations, parts
from relay.providers.chatwoot.parts import text_of
from relay.providers.coerce import as_e164, as_str
from tests.unit.providers.chatwoot import reference

_NOISE = re.compile(r"[\s()\-.+]")
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(),
    st.sampled_from(["", " ", "\u00a0", "0", "7", " 7 "]),
)


@given(scalars)
def test_text_of_is_as_str(value: Any) -> None:
    assert text_of(value) == as_str(value)


def _e164_by_noise_stripping(text: str) -> str | None:
    """What as_e164 made of a text before it kept E.164 text as sent."""
    if not text or text.isspace() or "@" in text or text.endswith("-group"):
        return None
    digits = _NOISE.sub("", text)
    if not (digits.isascii() and digits.isdigit()) or not 8 <= len(digits) <= 15:
        return None
    return None if digits[0] == "0" else "+" + digits


@example("+0554499999999")  # a leading zero is no country code
@example("+55449999")
@example("+5544999990001")
@example("+1234567890123456")  # 16 digits: too long
@example("+٥٥٤٤٩٩٩٩٩٩٩٩")  # Arabic-Indic digits are digits, not ASCII ones
@given(st.from_regex(r"\+[0-9]{0,17}", fullmatch=True) | st.text())
def test_an_e164_phone_is_kept_as_the_noise_stripping_path_would(text: str) -> None:
    assert as_e164(text) == _e164_by_noise_stripping(text)


PERSON_KEYS = ["id", "name", "available_name", "phone_number", "email", "identifier"]
AVATAR_KEYS = ["avatar", "thumbnail", "avatar_url"]
person_values = st.one_of(scalars, st.sampled_from(["+5544999990001", "5544999990001", "http://a"]))


@example({"avatar": 5, "thumbnail": "t"})  # an avatar that is not text still comes first
@example({"avatar": " ", "thumbnail": "t"})
@example({"thumbnail": None, "avatar_url": "u"})
@example({"phone_number": "+5544999990001"})
@given(st.dictionaries(st.sampled_from(PERSON_KEYS + AVATAR_KEYS + ["type"]), person_values))
def test_contacts_and_actors_read_as_the_tolerant_readers_read_them(obj: dict[str, Any]) -> None:
    for _ in range(2):  # the second time with the phone remembered
        assert parts.contact(obj) == reference.contact(obj)
        assert parts.actor(obj) == reference.actor(obj)
        assert parts.actor(obj, "user") == reference.actor(obj, "user")


@given(st.dictionaries(st.sampled_from(["id", "status", "channel", "inbox_id"]), person_values))
def test_conversations_read_as_the_tolerant_readers_read_them(obj: dict[str, Any]) -> None:
    assert conversations.conversation(obj) == reference.conversation(obj)


def test_the_remembered_phones_are_bounded() -> None:
    for n in range(5000):
        assert parts.phone(f"+55449{n:08d}") == f"+55449{n:08d}"
    assert len(parts._PHONES) <= 4096
    assert parts.phone("+05544999990001") is None  # never remembered: not E.164
    assert "+05544999990001" not in parts._PHONES
