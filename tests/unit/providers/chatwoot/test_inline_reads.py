"""The shortcuts the Chatwoot readers take for their common inputs give what the general
readers give: an id or text read by ``text_of``, an E.164 phone kept as sent, a message type
sent as its word, a message without attachments."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from relay.providers.chatwoot import content
from relay.providers.chatwoot.parts import text_of
from relay.providers.coerce import as_e164, as_str

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


def _message_type_by_words(value: Any) -> str | None:
    """What message_type made of a value before its exact words were looked up first."""
    if isinstance(value, int) and not isinstance(value, bool):
        return {0: "incoming", 1: "outgoing", 2: "activity", 3: "template"}.get(value)
    text = as_str(value)
    if text is None:
        return None
    text = text.strip().lower()
    if text.isascii() and text.isdigit():
        return {0: "incoming", 1: "outgoing", 2: "activity", 3: "template"}.get(int(text))
    return text


@given(
    st.sampled_from(["incoming", "outgoing", "activity", "template", " Incoming", "OUTGOING"])
    | scalars
)
def test_message_types_sent_as_words_read_as_before(value: Any) -> None:
    assert content.message_type(value) == _message_type_by_words(value)


def test_messages_without_attachments_do_not_share_their_lists() -> None:
    first = content.message({"id": 1, "message_type": "incoming"}, None, None)
    second = content.message({"id": 2, "message_type": "incoming", "attachments": []}, None, None)
    assert first.media == second.media == [] and first.shared_contacts == []
    assert first.media is not second.media
