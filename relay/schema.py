"""Published contracts: the JSON Schema of the canonical event, and an AsyncAPI 3.0
document of the topics relay writes and the HTTP endpoints it serves.

Both are generated, never written by hand: the schema from the msgspec Structs in
``relay/events.py``, the AsyncAPI document from those Structs and a :class:`Config`,
so neither can drift from what relay produces.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import yaml

from relay.asyncapi import asyncapi
from relay.events import DATASCHEMA, SCHEMA_VERSION, json_schema

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

Format = Literal["yaml", "json"]


def event_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of one canonical event, as published by ``relay schema``.

    Its ``$id`` is the ``dataschema`` every event carries; the ``data`` part alone is
    ``#/$defs/EventData`` (for subscribers that receive only ``data``).
    """
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": DATASCHEMA,
        "title": "relay canonical event",
        "description": (
            "A CloudEvents 1.0 envelope (structured JSON mode) around relay's typed event "
            "body. Parts that do not apply to an event type are absent. Generated from "
            "relay/events.py; new optional fields may appear within a schema version."
        ),
        "version": SCHEMA_VERSION,
        **json_schema(),
    }


def render(document: dict[str, Any], fmt: Format) -> str:
    if fmt == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


__all__ = ["asyncapi", "event_schema", "render"]
