"""The published contracts, generated from the code's own tables, never written by hand.

- :mod:`relay.contracts.jsonschema`: ``relay schema``, the canonical event's JSON Schema
- :mod:`relay.contracts.asyncapi`: ``relay asyncapi``, the AsyncAPI 3.0 document of a
  configuration: its topics, hooks, subscribers and HTTP endpoints
- :mod:`relay.contracts.messages`: the AsyncAPI message components
"""

from __future__ import annotations

import json
from typing import Any, Literal

import yaml

from relay.contracts.asyncapi import asyncapi
from relay.contracts.jsonschema import event_schema

Format = Literal["yaml", "json"]


def render(document: dict[str, Any], fmt: Format) -> str:
    if fmt == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


__all__ = ["Format", "asyncapi", "event_schema", "render"]
