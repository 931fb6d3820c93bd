"""`relay schema`: the canonical event's JSON Schema, checked against every event relay makes
from every fixture, and against what relay never emits."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from relay.cli import main
from relay.contracts import event_schema
from relay.events import DATASCHEMA
from tests.factories import FIXTURE_FILES, fixture_events
from tests.support import FIXTURES

ROOT = Path(__file__).parents[3]
EXAMPLE = ROOT / "config" / "relay.example.yaml"
ASYNCAPI_SCHEMA = FIXTURES / "asyncapi" / "asyncapi-3.0.0.schema.json"


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with every Struct closed (additionalProperties: false).

    The published schema stays open for forward compatibility; the closed copy proves
    that every key relay emits is described by it.
    """
    closed = copy.deepcopy(schema)
    for definition in closed["$defs"].values():
        if "properties" in definition:
            definition["additionalProperties"] = False
    return closed


@cache
def _validator() -> jsonschema.protocols.Validator:
    schema = _closed(event_schema())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_the_fixture_tree_is_all_there() -> None:
    providers = {provider for _, provider, _ in FIXTURE_FILES}
    kinds = {kind for _, _, kind in FIXTURE_FILES if kind}
    assert providers == {"chatwoot", "plugchat"}
    assert len(kinds) == 7
    assert len(FIXTURE_FILES) >= 50


def test_schema_is_a_versioned_2020_12_schema() -> None:
    schema = event_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == DATASCHEMA
    assert schema["version"] == "1.1" and schema["title"]
    assert DATASCHEMA == "urn:relay:schema:1.1"
    assert schema["$ref"] == "#/$defs/CloudEvent"
    jsonschema.Draft202012Validator.check_schema(schema)
    event_types = schema["$defs"]["CloudEvent"]["properties"]["type"]["enum"]
    assert "chat.message.created" in event_types and len(event_types) == 14
    assert "chat.message.deleted" in event_types


@pytest.mark.parametrize(
    ("relative", "provider", "kind"), FIXTURE_FILES, ids=[f[0] for f in FIXTURE_FILES]
)
def test_every_event_from_every_fixture_validates(
    relative: str, provider: str, kind: str | None
) -> None:
    events = list(fixture_events(relative, provider, kind))
    assert events
    for event in events:
        errors = [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in _validator().iter_errors(event)
        ]
        assert not errors, errors
        assert event["dataschema"] == DATASCHEMA


def test_the_schema_rejects_what_relay_never_emits() -> None:
    [event] = fixture_events("chatwoot/message_created.json", "chatwoot", None)
    wrong = [
        {**event, "type": "chat.message.exploded"},
        {key: value for key, value in event.items() if key != "partitionkey"},
        {**event, "data": {**event["data"], "provider": "whatsapp"}},
        {**event, "data": {**event["data"], "message": {"kind": "text", "direction": "up"}}},
    ]
    for bad in wrong:
        assert not _validator().is_valid(bad)
    # ``data`` alone (for subscribers that receive only data) has its own definition.
    data_schema = {**event_schema(), "$ref": "#/$defs/EventData"}
    jsonschema.Draft202012Validator(data_schema).validate(event["data"])


def test_cli_schema_prints_the_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == event_schema()


def test_the_trace_context_is_an_optional_extension_of_the_schema(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Additive: `relay schema` describes traceparent/tracestate, and an event without them
    (tracing off) is as valid as one with them."""
    assert main(["schema"]) == 0
    envelope = json.loads(capsys.readouterr().out)["$defs"]["CloudEvent"]
    for name in ("traceparent", "tracestate"):
        assert name in envelope["properties"]
        assert name not in envelope["required"]
    assert "distributed-tracing" in envelope["properties"]["traceparent"]["anyOf"][0]["description"]
    [event] = fixture_events("chatwoot/message_created.json", "chatwoot", None)
    assert "traceparent" not in event
    traced = {**event, "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
    assert _validator().is_valid(event) and _validator().is_valid({**traced, "tracestate": "a=1"})
    assert not _validator().is_valid({**traced, "traceparent": 7})
