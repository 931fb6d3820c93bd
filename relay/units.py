"""Durations and rates as the configuration writes them, decoded once into floats; the
wall clock in epoch milliseconds (:func:`now_ms`).

``Seconds`` and ``PerSecond`` are floats: a consumer reads ``config.limits.body_timeout``
as seconds and never parses text. ``dec_hook`` is what ``msgspec.convert`` calls for them
(relay.config passes it), so a wrong value is reported with its path, like any other
type error: ``limits.body_timeout: expected a duration like 500ms, 10s, 5m or 1h, got 'x'``.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any


def now_ms() -> int:
    """Now, in epoch milliseconds: what records, attempts and stored rows are stamped with.

    Callers look it up on the module (``units.now_ms()``), so a test sets the clock here.
    """
    return int(time.time() * 1000)


class Seconds(float):
    """A duration: a number of seconds, or text with a unit (``500ms``, ``10s``, ``5m``,
    ``1h``, ``1d``). Never negative, always finite."""


class PositiveSeconds(Seconds):
    """A duration above zero: a timeout, a window, a wait that must end."""


class PerSecond(float):
    """A rate: ``100/s``, ``6000/m``, ``3600/h``, or a number per second. Always positive."""


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|second|m|min|minute|h|hour))?\s*$")
_RATE_UNITS = {
    None: 1.0,
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
}


def seconds(value: str | float) -> Seconds:
    """A duration in seconds; raises ValueError with the reason."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 10s, got a boolean")
    if isinstance(value, int | float):
        number = float(value)
    else:
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"expected a duration like 500ms, 10s, 5m or 1h, got {value!r}")
        number = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if number < 0:
        raise ValueError("a duration cannot be negative")
    if not math.isfinite(number):
        raise ValueError("a duration must be finite")
    return Seconds(number)


def positive_seconds(value: str | float) -> PositiveSeconds:
    """A duration that must be above zero; raises ValueError with the reason."""
    number = seconds(value)
    if number <= 0:
        raise ValueError("must be positive")
    return PositiveSeconds(number)


def per_second(value: str | float) -> PerSecond:
    """A rate limit (``100/s``, ``6000/m``, ``3600/h`` or a number) as events per second."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        rate = float(value)
    elif isinstance(value, str) and (match := _RATE.match(value)) is not None:
        rate = float(match.group(1)) / _RATE_UNITS[match.group(2)]
    else:
        raise ValueError(f"expected a rate like 100/s or 6000/m, got {value!r}")
    if rate <= 0:
        raise ValueError("a rate limit must be positive")
    return PerSecond(rate)


def dec_hook(type_: type, value: Any) -> Any:
    """``msgspec.convert``'s hook: text and numbers into Seconds, PositiveSeconds and PerSecond."""
    if type_ is Seconds:
        return seconds(value)
    if type_ is PositiveSeconds:
        return positive_seconds(value)
    if type_ is PerSecond:
        return per_second(value)
    raise NotImplementedError(type_)


def enc_hook(value: Any) -> Any:
    """``msgspec``'s encoding hook: Seconds and PerSecond as the floats they are."""
    if isinstance(value, float):
        return float(value)
    raise NotImplementedError(type(value))
