"""What a configuration can parse and still never do: warnings for ``relay check``/``serve``.

The rules read the canonical event's own Structs (:mod:`relay.events`) and the route
table, so they follow the schema as it grows:

- a type glob (routes, subscribers) that matches no canonical event type;
- a ``where`` path that no canonical event can have (``message.direction`` for
  ``data.message.direction``), or a value its field can never take;
- a subscriber whose topics no route, nor the default, sends the types it matches.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable
from typing import Any

import msgspec
from msgspec import inspect

from relay.config import Config, Match, Patterns
from relay.events import EVENT_TYPES, CloudEvent


class Leaf(msgspec.Struct, frozen=True):
    """Where a path ends: anything below is possible (``open``), or these literal values."""

    open: bool = False
    values: frozenset[Any] | None = None


def _patterns(value: Patterns | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def types_matching(pattern: str) -> list[str]:
    return [t for t in EVENT_TYPES if fnmatch.fnmatchcase(t, pattern)]


def _walk(node: inspect.Type, parts: list[str]) -> list[Leaf]:
    """Every way ``parts`` can be followed down ``node``; empty when none can."""
    if isinstance(node, inspect.AnyType):
        return [Leaf(open=True)]
    if isinstance(node, inspect.UnionType):
        return [leaf for member in node.types for leaf in _walk(member, parts)]
    if isinstance(node, inspect.Metadata):
        return _walk(node.type, parts)
    if not parts:
        if isinstance(node, inspect.LiteralType):
            return [Leaf(values=frozenset(node.values))]
        if isinstance(node, inspect.NoneType):
            return [Leaf(values=frozenset([None]))]
        return [Leaf(open=True)]
    head, rest = parts[0], parts[1:]
    if isinstance(node, inspect.StructType):
        for field in node.fields:
            if field.encode_name == head:
                return _walk(field.type, rest)
        return []
    if isinstance(node, inspect.DictType):
        return _walk(node.value_type, rest)
    if isinstance(node, inspect.ListType | inspect.TupleType | inspect.VarTupleType):
        if not head.isdigit():
            return []
        item = node.item_type if not isinstance(node, inspect.TupleType) else None
        if item is None:
            assert isinstance(node, inspect.TupleType)
            index = int(head)
            return _walk(node.item_types[index], rest) if index < len(node.item_types) else []
        return _walk(item, rest)
    return []


_EVENT = inspect.type_info(CloudEvent)


def path_leaves(path: str) -> list[Leaf]:
    """How a dotted event path (``data.message.direction``) can end; empty: it cannot exist."""
    return _walk(_EVENT, path.split("."))


def _accepts(leaves: list[Leaf], expected: Any) -> bool:
    """Whether some event could have ``expected`` at a path with these leaves."""
    if isinstance(expected, list):
        return any(_accepts(leaves, item) for item in expected)
    for leaf in leaves:
        if leaf.open or leaf.values is None:
            return True
        if expected is None:
            return True  # an absent value matches None
        for value in leaf.values:
            if isinstance(expected, str) and isinstance(value, str):
                if fnmatch.fnmatchcase(value, expected):
                    return True
            elif value == expected:
                return True
    return False


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _match_warnings(where: str, match: Match) -> list[str]:
    warnings: list[str] = []
    for pattern in _patterns(match.type):
        if not types_matching(pattern):
            warnings.append(
                f"{where}.match.type: {pattern!r} matches no event type"
                f"{_suggest(pattern, EVENT_TYPES)}"
            )
    for path, expected in (match.where or {}).items():
        leaves = path_leaves(path)
        if not leaves:
            hint = ""
            if path_leaves(f"data.{path}"):
                hint = f" (did you mean 'data.{path}'?)"
            warnings.append(f"{where}.match.where: no event has the path {path!r}{hint}")
        elif not _accepts(leaves, expected):
            values = sorted(
                repr(v) for leaf in leaves if leaf.values is not None for v in leaf.values
            )
            warnings.append(
                f"{where}.match.where.{path}: {expected!r} is never a value there "
                f"(it is one of {', '.join(values)})"
            )
    return warnings


def _globs(patterns: Patterns | None, value: str | None) -> bool | None:
    """Whether ``value`` matches the patterns: True, False, or None when it is not known."""
    if patterns is None:
        return True
    if value is None:
        return None
    return any(fnmatch.fnmatchcase(value, p) for p in _patterns(patterns))


def reachable_topics(
    config: Config, event_type: str, source: str | None = None, provider: str | None = None
) -> set[str]:
    """The topics an event of this type (from this source, when known) can be published to.

    A route whose every condition is known to hold claims the event, so the default topic
    is then out of reach; one with ``where`` conditions (or an unknown source) may or may
    not, so both stay possible.
    """
    topics: set[str] = set()
    claimed = False
    for route in config.routes:
        match = route.match
        if not _globs(match.type or "*", event_type):
            continue
        by_source, by_provider = _globs(match.source, source), _globs(match.provider, provider)
        if by_source is False or by_provider is False:
            continue
        topics.add(route.topic)
        claimed = claimed or (by_source is True and by_provider is True and not match.where)
    if not claimed:
        topics.add(config.topics.events)
    return topics


def _origins(config: Config, match: Match) -> list[tuple[str | None, str | None]]:
    """The configured (source, provider) pairs a match accepts; unknown when none are set."""
    if not config.sources:
        return [(None, None)]
    return [
        (name, source.provider)
        for name, source in sorted(config.sources.items())
        if _globs(match.source, name) and _globs(match.provider, source.provider)
    ]


def _subscriber_warnings(config: Config, index: int) -> list[str]:
    sub = config.subscribers[index]
    where = f"subscribers[{index}] ({sub.name})"
    reads = set(sub.topic_list(config.topics.events))
    warnings: list[str] = []
    origins = _origins(config, sub.match)
    if not origins:
        return [
            f"{where}.match: no configured source has the source/provider it asks for "
            f"(sources: {', '.join(sorted(config.sources))})"
        ]
    if reads & {config.topics.raw, config.topics.deadletter}:
        return warnings  # those records are not routed: nothing to compare
    for pattern in _patterns(sub.match.type) or ["*"]:
        types = types_matching(pattern)
        if not types:
            continue  # already reported as a glob that matches nothing
        sent_to = [reachable_topics(config, t, *origin) for t in types for origin in origins]
        if any(topics & reads for topics in sent_to):
            continue
        elsewhere = sorted(set().union(*sent_to))
        warnings.append(
            f"{where}: no event of type {pattern!r} reaches its topics "
            f"({', '.join(sorted(reads))}); the routes send them to {', '.join(elsewhere)}"
        )
    return warnings


def warnings(config: Config) -> list[str]:
    """Everything in ``config`` that parses but cannot work as written."""
    found: list[str] = []
    for i, route in enumerate(config.routes):
        found += _match_warnings(f"routes[{i}]", route.match)
    for i, sub in enumerate(config.subscribers):
        found += _match_warnings(f"subscribers[{i}]", sub.match)
        found += _subscriber_warnings(config, i)
    return found
