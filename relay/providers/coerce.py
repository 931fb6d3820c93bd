"""Tolerant readers for provider payloads and normalizers of canonical values.

Providers send integers where strings are expected, keys with trailing spaces,
nulls, epoch seconds or milliseconds or ISO strings for times. Everything here
accepts any JSON value and returns either a normalized value or ``None``;
nothing here raises on bad input.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

JSONObject = Mapping[str, Any]
_EMPTY: JSONObject = {}

# Epoch values above this are milliseconds (1e11 s is the year 5138).
_MS_THRESHOLD = 100_000_000_000
# Accept times between 2000-01-01 and 2200-01-01; anything else is a bad value.
_MIN_EPOCH = 946_684_800
_MAX_EPOCH = 7_258_118_400


_MISSING: Any = object()


# Objects with more keys than this get their padded keys indexed once instead of scanned
# on every missed lookup, so a body of 100k keys costs one pass, not one per lookup.
_INDEX_AT = 32
_MAX_INDEXES = 1024
_indexes: dict[int, tuple[Mapping[str, Any], dict[str, str] | str | None]] = {}


def get(obj: Any, key: str) -> Any:
    """``obj[key]`` for a JSON object, tolerating keys sent with stray whitespace."""
    # Hot path (every normalizer calls this dozens of times a body): decoded JSON objects
    # are plain dicts, and an exact isinstance check on them avoids the ABC machinery.
    if type(obj) is not dict and not isinstance(obj, Mapping):
        return None
    value = obj.get(key, _MISSING)
    if value is not _MISSING:
        return value
    if len(obj) > _INDEX_AT:
        original = _padded_key(obj, key)
        return obj[original] if original is not None else None
    for candidate, candidate_value in obj.items():
        if (type(candidate) is str or isinstance(candidate, str)) and candidate.strip() == key:
            return candidate_value
    return None


_SEPARATOR = "\x00"
_MAX_CANDIDATES = 64
_TOO_MANY: Any = object()


def _padded_key(obj: Mapping[str, Any], key: str) -> str | None:
    """The first key of a large ``obj`` that strips to ``key``.

    The object's keys are joined once into one text, searched at C speed per missed
    lookup (a missed key is usually in no key at all); only when a lookup meets more than
    a few keys merely containing it is the full index built (one ``strip`` per key).
    """
    entry = _indexes.get(id(obj))
    if entry is None or entry[0] is not obj:  # the object itself is held: ids cannot recur
        entry = (obj, _keys_text(obj))
        if len(_indexes) >= _MAX_INDEXES:
            _indexes.clear()
        _indexes[id(obj)] = entry
    found = entry[1]
    if type(found) is str:
        result = _search(found, key)
        if result is not _TOO_MANY:
            return result  # type: ignore[no-any-return]
    elif type(found) is dict:
        return found.get(key)
    return _padded_keys(obj).get(key)


def _keys_text(obj: Mapping[str, Any]) -> str | None:
    """The keys between separators, or None when a key is not text or holds the separator."""
    try:
        text = _SEPARATOR + _SEPARATOR.join(obj) + _SEPARATOR
    except TypeError:
        return None
    return text if text.count(_SEPARATOR) == len(obj) + 1 else None


def _search(text: str, key: str) -> Any:
    """The first key in ``text`` that strips to ``key``, None, or _TOO_MANY candidates."""
    if not key:
        return _TOO_MANY  # every key contains it: the index answers
    start = 0
    for _ in range(_MAX_CANDIDATES):
        at = text.find(key, start)
        if at < 0:
            return None
        left = text.rfind(_SEPARATOR, 0, at) + 1
        right = text.find(_SEPARATOR, at + len(key))
        candidate = text[left:right]
        if candidate.strip() == key:
            return candidate
        start = right
    return _TOO_MANY


def _padded_keys(obj: Mapping[str, Any]) -> dict[str, str]:
    """Stripped key → the first key that strips to it.

    Unpadded keys map to themselves: harmless, as only a key missing from ``obj`` is
    looked up here. Built at C speed (a 1 MiB body can hold 100k keys).
    """
    entry = _indexes.get(id(obj))
    if entry is not None and entry[0] is obj and type(entry[1]) is dict:
        return entry[1]
    # built from the last key to the first, so the first padded spelling wins
    keys = list(obj)
    keys.reverse()
    try:
        index: dict[str, str] = dict(zip(map(str.strip, keys), keys, strict=True))
    except TypeError:  # a Mapping with keys that are not text (never decoded JSON)
        index = {k.strip(): k for k in keys if type(k) is str}
    if len(_indexes) >= _MAX_INDEXES:
        _indexes.clear()
    _indexes[id(obj)] = (obj, index)
    return index


def forget_indexes() -> None:
    """Drop the padded-key indexes (and the objects they hold): normalizers call it when done."""
    _indexes.clear()


def get_obj(obj: Any, key: str) -> JSONObject:
    value = obj.get(key, _MISSING) if type(obj) is dict else _MISSING
    if value is _MISSING:
        value = get(obj, key)
    return value if type(value) is dict or isinstance(value, Mapping) else _EMPTY


def get_list(obj: Any, key: str) -> list[Any]:
    value = get(obj, key)
    return value if isinstance(value, list) else []


def first(obj: Any, *keys: str) -> Any:
    """The first of ``keys`` present with a non-null value."""
    for key in keys:
        value = get(obj, key)
        if value is not None:
            return value
    return None


def as_str(value: Any) -> str | None:
    """A scalar as text: strings as they are (blank is None), numbers in decimal."""
    if value is None:
        return None
    if type(value) is int:  # ids (bool is not int by type)
        return str(value)
    if type(value) is str or isinstance(value, str):
        return None if not value or value.isspace() else value  # strip() without a copy
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return None


def get_str(obj: Any, *keys: str) -> str | None:
    # ``as_str(get(obj, key))`` with the common case (a dict holding the key) inlined: this
    # runs ~40 times a body
    is_dict = type(obj) is dict
    for key in keys:
        value = obj.get(key, _MISSING) if is_dict else _MISSING
        if value is _MISSING:
            value = get(obj, key)
        if type(value) is str:
            if value and not value.isspace():
                return value
        elif value is not None and (text := as_str(value)) is not None:
            return text
    return None


def as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
    return None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if number == number and abs(number) != float("inf") else None


def as_int(value: Any) -> int | None:
    """An integral number (or its decimal text) as int; anything else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        text = value.strip()
        digits = text[1:] if text[:1] == "-" else text
        if digits.isascii() and digits.isdigit() and len(digits) <= 18:
            return int(text)
    return None


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with millisecond precision, e.g. ``2022-04-27T13:18:01.865Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _from_epoch(number: float) -> str | None:
    seconds = number / 1000 if abs(number) >= _MS_THRESHOLD else number
    if not _MIN_EPOCH <= seconds <= _MAX_EPOCH:
        return None
    if type(number) is int:  # whole seconds or milliseconds: exact in integers
        whole, millis = divmod(number, 1000) if abs(number) >= _MS_THRESHOLD else (number, 0)
        return _from_whole_seconds(whole, millis)
    # datetime.fromtimestamp's own rounding (to the microsecond, half to even), then its
    # isoformat's truncation to milliseconds, without building the datetime
    fraction, whole_seconds = math.modf(seconds)
    micros = round(fraction * 1e6)
    if micros >= 1_000_000:
        whole_seconds += 1.0
        micros -= 1_000_000
    return _from_whole_seconds(int(whole_seconds), micros // 1000)


_DAYS: dict[int, str] = {}
"""Epoch day → its ``YYYY-MM-DD``: timestamps cluster on a few days (bounded below)."""


def _from_whole_seconds(seconds: int, millis: int) -> str:
    """``format_time`` of an epoch second (and milliseconds) without a datetime: what
    ``datetime.isoformat`` costs is most of a normalizer's time handling."""
    day, rest = divmod(seconds, 86_400)
    date = _DAYS.get(day)
    if date is None:
        if len(_DAYS) >= 4096:
            _DAYS.clear()
        date = _DAYS[day] = time.strftime("%Y-%m-%d", time.gmtime(day * 86_400))
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{date}T{_TWO[hours]}:{_TWO[minutes]}:{_TWO[secs]}.{_THREE[millis]}Z"


_TWO = [f"{n:02d}" for n in range(60)]
_THREE = [f"{n:03d}" for n in range(1000)]


_NUMERIC = re.compile(r"^\s*-?\d+(\.\d+)?\s*$")
_CANONICAL = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")


def as_time(value: Any) -> str | None:
    """Epoch seconds, epoch milliseconds or an ISO-ish string to RFC 3339 UTC."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return _from_epoch(value)
    if isinstance(value, float):
        if value != value:
            return None
        return _from_epoch(int(value)) if value.is_integer() else _from_epoch(value)
    if isinstance(value, Mapping):
        # Chatwoot's docs show {"timestamp": "..."} for initiated_at.
        return as_time(get(value, "timestamp"))
    if not isinstance(value, str):
        return None
    if len(value) == 24 and _CANONICAL.fullmatch(value) is not None:
        # already RFC 3339 UTC with milliseconds (what Chatwoot sends): valid is enough
        try:
            datetime.fromisoformat(value)
        except ValueError:
            return None
        return value
    text = value.strip()
    if not text:
        return None
    if _NUMERIC.match(text):
        return _from_epoch(float(text))
    js_date = _JS_DATE.match(text)
    if js_date is not None:
        return _from_js_date(js_date)
    if text.endswith(" UTC"):
        text = text[:-4] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_time(moment)


# JavaScript's Date.toString(), sent by Chatwoot's widget:
# "Tue Jul 14 2026 11:02:09 GMT-0300 (Horário Padrão de Brasília)"
_JS_DATE = re.compile(
    r"^\w{3} (?P<date>\w{3} \d{1,2} \d{4} \d{2}:\d{2}:\d{2}) GMT(?P<offset>[+-]\d{4})"
)


def _from_js_date(match: re.Match[str]) -> str | None:
    try:
        moment = datetime.strptime(f"{match['date']} {match['offset']}", "%b %d %Y %H:%M:%S %z")
    except ValueError:
        return None
    return format_time(moment)


_PHONE_NOISE = re.compile(r"[\s()\-.+]")


def as_e164(value: Any) -> str | None:
    """A phone number as E.164 (``+554499999999``), or None when it is not one.

    WhatsApp LIDs (``…@lid``), JIDs and group ids are identifiers, not phone
    numbers, and are never turned into E.164.
    """
    if type(value) is str and value[:1] == "+" and 9 <= len(value) <= 16 and value[1] != "0":
        rest = value[1:]
        if rest.isascii() and rest.isdigit():  # already E.164 (what Chatwoot stores)
            return value
    text = as_str(value)
    if text is None or "@" in text or text.endswith("-group"):
        return None
    # digits only (what Z-API sends) need no noise stripping
    digits = text if text.isascii() and text.isdigit() else _PHONE_NOISE.sub("", text)
    if not (digits.isascii() and digits.isdigit()) or not 8 <= len(digits) <= 15:
        return None
    if digits[0] == "0":
        return None
    return "+" + digits
