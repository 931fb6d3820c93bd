"""Reading the file: YAML (duplicate keys refused) → ``${VAR}`` interpolation → the Structs.

A mistake is reported as one line naming where it is in the file, e.g.
``routes[1].topic: expected str, got int``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import yaml

from relay.config.errors import ConfigError, describe
from relay.config.fields import Name
from relay.config.model import Config, Source
from relay.units import dec_hook

_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def interpolate(value: Any, env: Mapping[str, str], path: str = "") -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string; ``$$`` is a literal ``$``.

    Done after YAML parsing, so a variable's value can never change the file's structure.
    """
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"{path or '<root>'}: environment variable {name} is not set")

        return _VAR.sub(substitute, value)
    if isinstance(value, list):
        return [interpolate(item, env, _join(path, i)) for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {key: interpolate(item, env, _join(path, str(key))) for key, item in value.items()}
    return value


def _convert(data: dict[str, Any]) -> Config:
    # msgspec's paths do not name mapping keys, so sources are checked one by one first.
    sources = data.get("sources")
    if isinstance(sources, dict):
        for name, source in sources.items():
            where = f".sources.{name}"
            try:
                msgspec.convert(name, Name)
            except msgspec.ValidationError as exc:
                raise ConfigError(describe(exc, str, name, where)) from None
            try:
                msgspec.convert(source, Source, strict=False, dec_hook=dec_hook)
            except msgspec.ValidationError as exc:
                raise ConfigError(describe(exc, Source, source, where)) from None
    try:
        return msgspec.convert(data, Config, str_keys=True, strict=False, dec_hook=dec_hook)
    except msgspec.ValidationError as exc:
        raise ConfigError(describe(exc, Config, data)) from None


def _normalize_secrets(data: Any) -> Any:
    """``signing_secret: ""``, ``admin.token: ""`` or ``metrics.token: ""`` (an unset
    ``${VAR:-}``) mean none."""
    for section in ("admin", "metrics"):
        found = data.get(section) if isinstance(data, dict) else None
        if isinstance(found, dict) and found.get("token") == "":
            found["token"] = None
    sources = data.get("sources") if isinstance(data, dict) else None
    if isinstance(sources, dict):
        for source in sources.values():
            if isinstance(source, dict) and source.get("signing_secret") == "":
                source["signing_secret"] = None
    return data


class DuplicateKey(yaml.MarkedYAMLError):
    """The same key twice in one mapping: PyYAML would silently keep the last one."""


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing duplicate keys (a second ``sources:`` block would
    otherwise replace the first without a word)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` then overriding a key is what merges are for
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key; the base class reports it
            if first is not None:
                raise DuplicateKey(
                    problem=f"duplicate key {key!r} (first at line {first.line + 1})",
                    problem_mark=key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def parse(text: str, *, env: Mapping[str, str] | None = None, name: str = "<config>") -> Config:
    try:
        raw = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except DuplicateKey as exc:
        mark = exc.problem_mark
        assert mark is not None
        raise ConfigError(f"{name}:{mark.line + 1}:{mark.column + 1}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark is not None else name
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: the top level must be a mapping")
    return _convert(_normalize_secrets(interpolate(raw, os.environ if env is None else env)))


def load(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> Config:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    return parse(text, env=env, name=str(path))
