"""Routing: which topics a canonical event is published to.

A matcher tests type and source globs, providers and ``where`` predicates on event
paths (``data.message.direction``). Every matching route publishes; an event no route
claims goes to the events topic.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from relay.config import Match, Route
from relay.events import CloudEvent, EventHead

_MISSING = object()


def _compile_globs(patterns: str | list[str] | None) -> re.Pattern[str] | None:
    if patterns is None:
        return None
    items = [patterns] if isinstance(patterns, str) else patterns
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in items))


def resolve(event: Any, path: str) -> Any:
    """The value at a dotted path of an event (``data.message.direction``), or a sentinel."""
    value = event
    for part in path.split("."):
        if isinstance(value, msgspec.Struct):
            value = getattr(value, part, _MISSING)
        elif isinstance(value, Mapping):
            value = value.get(part, _MISSING)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def _accepts(expected: Any, actual: Any) -> bool:
    if isinstance(expected, list):
        return any(_accepts(item, actual) for item in expected)
    if expected is None:
        return actual is None or actual is _MISSING
    if actual is _MISSING:
        return False
    if isinstance(expected, str) and isinstance(actual, str):
        return fnmatch.fnmatchcase(actual, expected)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    return bool(expected == actual)


@dataclass(frozen=True, slots=True)
class Matcher:
    types: re.Pattern[str] | None
    sources: re.Pattern[str] | None
    providers: re.Pattern[str] | None
    where: tuple[tuple[str, Any], ...]

    @classmethod
    def compile(cls, match: Match) -> Matcher:
        return cls(
            types=_compile_globs(match.type),
            sources=_compile_globs(match.source),
            providers=_compile_globs(match.provider),
            where=tuple((match.where or {}).items()),
        )

    def __call__(self, event: CloudEvent | EventHead) -> bool:
        if self.types is not None and not self.types.match(event.type):
            return False
        if self.sources is not None and not self.sources.match(event.data.source):
            return False
        if self.providers is not None and not self.providers.match(event.data.provider):
            return False
        if not self.where:  # the usual route: no generator per event
            return True
        return all(_accepts(expected, resolve(event, path)) for path, expected in self.where)


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    name: str
    topic: str
    matcher: Matcher


_CACHE_SIZE = 4096


class Router:
    def __init__(self, routes: Iterable[Route], default_topic: str) -> None:
        self.routes: tuple[CompiledRoute, ...] = tuple(
            CompiledRoute(route.name, route.topic, Matcher.compile(route.match)) for route in routes
        )
        self.default_topic = default_topic
        # Without ``where`` predicates the topics depend on (type, source, provider) alone,
        # a small set: remember them instead of matching every route for every event.
        self._cache: dict[tuple[str, str, str], Sequence[str]] | None = (
            None if any(route.matcher.where for route in self.routes) else {}
        )

    def topics_for(self, event: CloudEvent) -> Sequence[str]:
        cache = self._cache
        if cache is None:
            return self._match(event)
        key = (event.type, event.data.source, event.data.provider)
        topics = cache.get(key)
        if topics is None:
            if len(cache) >= _CACHE_SIZE:
                cache.clear()
            topics = cache[key] = tuple(self._match(event))
        return topics

    def _match(self, event: CloudEvent) -> Sequence[str]:
        topics: list[str] = []
        for route in self.routes:
            if route.topic not in topics and route.matcher(event):
                topics.append(route.topic)
        return topics or (self.default_topic,)
