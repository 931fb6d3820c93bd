"""``relay schema``: the JSON Schema of the canonical event, generated from the msgspec
Structs in ``relay/events.py`` (never written by hand, so it cannot drift)."""

from __future__ import annotations

from typing import Any

from relay.events import DATASCHEMA, SCHEMA_VERSION, json_schema

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


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
