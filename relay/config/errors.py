"""A msgspec validation error as one line for the operator: ``routes[1].topic: expected str``.

msgspec says where (``$.subscribers[0].retry``) and what; this adds what it cannot: the field
a ``__post_init__`` rule names (:class:`~relay.config.fields.Invalid`), YAML words instead of
JSON's, constraints in words (``must be at least 1``), the sentence for a text pattern, "did you
mean" for a misspelt field and the allowed values of a bad enum value.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

import msgspec
from msgspec import inspect

from relay.config.fields import PATTERN_PROBLEMS, Invalid


class ConfigError(Exception):
    """A configuration mistake, already phrased for the operator."""


_MSGSPEC_PATH = re.compile(
    r"^(?P<message>.*?)(?: - at `(?P<key>key` in `)?\$(?P<path>[^`]*)`)?$", re.DOTALL
)
_FIELD_PROBLEM = re.compile(
    r"^Object (contains unknown|missing required) field `(?P<field>[^`]*)`$"
)
_BOUND = re.compile(r"^Expected `(?:int|float)` (?P<op>>=|>|<=|<) (?P<limit>\S+)$")
_BOUND_WORDS = {
    ">=": "must be at least",
    ">": "must be above",
    "<=": "must be at most",
    "<": "must be below",
}
_PATTERN = re.compile(r"^Expected `str` matching regex (?P<regex>.*)$", re.DOTALL)
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")


def _number(text: str) -> str:
    return text[:-2] if text.endswith(".0") else text


def _type_at(root: type, path: str) -> inspect.Type | None:
    """The type a msgspec error path (``.subscribers[0].retry``) points into, if known."""
    node: inspect.Type = inspect.type_info(root)
    for part in _PATH_PART.finditer(path):
        while isinstance(node, inspect.UnionType):
            members = [t for t in node.types if not isinstance(t, inspect.NoneType)]
            structured = [
                t for t in members if isinstance(t, inspect.StructType | inspect.ListType)
            ]
            node = (structured or members)[0]
        if part.group(1) is not None and isinstance(node, inspect.StructType):
            fields = {f.encode_name: f.type for f in node.fields}
            if part.group(1) not in fields:
                return None
            node = fields[part.group(1)]
        elif part.group(2) is not None and isinstance(node, inspect.ListType):
            node = node.item_type
        else:
            return None
    return node


class _Missing:
    def __repr__(self) -> str:
        return "the value"  # a mapping key msgspec does not name


_MISSING: Any = _Missing()


def _value_at(data: Any, path: str) -> Any:
    """The value the file gave at a msgspec error path, or _MISSING."""
    for part in _PATH_PART.finditer(path):
        key: str | int = part.group(1) if part.group(1) is not None else part.group(2)
        if key == "...":
            return _MISSING
        if isinstance(data, dict) and isinstance(key, str):
            data = data.get(key, _MISSING)
        elif isinstance(data, list) and str(key).isdigit() and int(key) < len(data):
            data = data[int(key)]
        else:
            return _MISSING
        if data is _MISSING:
            return _MISSING
    return data


def _hint(root: type, path: str, message: str, field: str | None) -> str:
    """'did you mean' for an unknown field, the allowed values for a bad enum value."""
    if field is not None and "unknown" in message:
        node = _type_at(root, path)
        if isinstance(node, inspect.StructType):
            names = [f.encode_name for f in node.fields]
            close = difflib.get_close_matches(field, names, n=1)
            if close:
                return f" (did you mean {close[0]!r}?)"
    elif message.startswith("Invalid enum value"):
        node = _type_at(root, path)
        if isinstance(node, inspect.UnionType):
            node = next((t for t in node.types if isinstance(t, inspect.LiteralType)), node)
        if isinstance(node, inspect.LiteralType):
            return f" (expected one of: {', '.join(str(v) for v in node.values)})"
    return ""


def _words(message: str, value: Any) -> str:
    """msgspec's sentence, in the words of the file's author."""
    if (bound := _BOUND.match(message)) is not None:
        op, limit = bound.group("op"), _number(bound.group("limit"))
        got = "" if value is _MISSING else f" (got {value!r})"
        if op == ">" and limit == "0":
            return "must be positive" + got
        if op == ">=" and limit == "0":
            return "cannot be negative" + got
        return f"{_BOUND_WORDS[op]} {limit}{got}"
    if message == "Expected `array` of length >= 1":
        return "cannot be empty"
    pattern = _PATTERN.match(message)
    if pattern is not None and pattern.group("regex") in PATTERN_PROBLEMS:
        return PATTERN_PROBLEMS[pattern.group("regex")].format(value=value)
    message = (message[:1].lower() + message[1:]).replace("`", "")
    # YAML words, not JSON's: `tokens: abc` is "expected a list, got str"
    message = message.replace("expected array", "expected a list")
    return message.replace("expected object", "expected a mapping")


def describe(exc: msgspec.ValidationError, root: type, data: Any = None, prefix: str = "") -> str:
    """One line: where in the file (``prefix`` for what msgspec cannot name), then what."""
    match = _MSGSPEC_PATH.match(str(exc))
    assert match is not None
    message = match.group("message")
    located = match.group("path") or ""
    path = prefix + located
    if isinstance(exc.__cause__, Invalid):
        field = exc.__cause__.field
        path += field if field.startswith("[") else "." + field
        return f"{path.lstrip('.')}: {message}"
    value = _value_at(data, located) if match.group("key") is None else _MISSING
    problem = _FIELD_PROBLEM.match(message)
    hint = _hint(root, located, message, problem.group("field") if problem else None)
    if problem is not None:
        path += "." + problem.group("field")
        message = "unknown field" if "unknown" in message else "required field is missing"
    else:
        message = _words(message, value)
    path = path.lstrip(".")
    return f"{path}: {message}{hint}" if path else f"{message}{hint}"
