"""The constrained value types the settings are made of, and the error a cross-field rule raises.

A constraint lives in the type (``Annotated[int, Meta(ge=1)]``), so msgspec checks it while
decoding and reports the path itself; relay.config.errors turns msgspec's wording into the
operator's (``must be at least 1``). A text pattern is declared with :func:`text`, which also
records the sentence that explains a value not matching it.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

PATTERN_PROBLEMS: dict[str, str] = {}
"""``repr(regex)`` (as msgspec's message shows it) → what is wrong with a value that does not
match it (``{value!r}`` is filled in)."""


def text(pattern: str, problem: str) -> msgspec.Meta:
    """A string constraint whose failure reads ``problem`` instead of the regex."""
    PATTERN_PROBLEMS[repr(pattern)] = problem
    return msgspec.Meta(pattern=pattern)


class Invalid(ValueError):
    """A rule across fields broke, raised in a ``__post_init__``: ``field`` is the path below
    the Struct (``url``, ``allow_cidrs[2]``), which msgspec does not know."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem)
        self.field = field


Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
Positive = Annotated[int, msgspec.Meta(gt=0)]
AtLeastOne = Annotated[int, msgspec.Meta(ge=1)]
NotNegative = Annotated[int, msgspec.Meta(ge=0)]
Share = Annotated[float, msgspec.Meta(gt=0, le=1)]
"""A fraction: above 0, at most 1 (NaN fails both bounds)."""

Name = Annotated[
    str,
    text(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", "{value!r} is not a name (letters, digits, '_', "
         "'.', '-'; at most 64, starting with a letter or digit)"),
]  # fmt: skip
"""A source's or a subscriber's name (it appears in URLs, metrics and consumer group ids)."""

Topic = Annotated[
    str,
    text(r"^(?!\.\.?$)[A-Za-z0-9._-]{1,249}$",
         "{value!r} is not a Kafka topic name (letters, digits, '.', '_', '-')"),
]  # fmt: skip

Token = Annotated[str, text(r"\S", "empty token (is its environment variable set?)")]


class Section(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, frozen=True):
    """A block of the configuration file: unknown keys are mistakes, values never change."""
