"""`relay asyncapi`: the AsyncAPI 3.0 document of a configuration, valid against the
AsyncAPI schema, following its topics, routes and subscribers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from relay.cli import main
from relay.config import Config
from relay.contracts import asyncapi
from tests.factories import FIXTURE_FILES, fixture_events
from tests.support import FIXTURES, make_config

ROOT = Path(__file__).parents[3]
EXAMPLE = ROOT / "config" / "relay.example.yaml"
ASYNCAPI_SCHEMA = FIXTURES / "asyncapi" / "asyncapi-3.0.0.schema.json"


@cache
def _asyncapi_validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(ASYNCAPI_SCHEMA.read_text()))


def _assert_valid_asyncapi(document: dict[str, Any]) -> None:
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message[:200]}"
        for e in _asyncapi_validator().iter_errors(document)
    ]
    assert not errors, errors
    # Every $ref points at something in the document.
    for ref in _refs(document):
        node: Any = document
        for part in ref.removeprefix("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _addresses(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {channel["address"]: channel for channel in document["channels"].values()}


def _published(document: dict[str, Any]) -> set[str]:
    channels = document["channels"]
    return {
        channels[op["channel"]["$ref"].rsplit("/", 1)[1]]["address"]
        for op in document["operations"].values()
        if op["action"] == "send"
    }


def test_asyncapi_of_the_example_configuration() -> None:
    document = asyncapi(make_config(EXAMPLE.read_text()))
    _assert_valid_asyncapi(document)
    assert document["asyncapi"] == "3.0.0"
    topics = {"chat.events", "chat.messages", "chat.attendance", "relay.raw", "relay.deadletter"}
    hooks = {"/v1/hooks/nexloo", "/v1/hooks/trino", "/v1/hooks/plugchat/{kind}"}
    delivery = {
        channel["address"]
        for channel_id, channel in document["channels"].items()
        if channel_id.startswith("subscriber-")
    }
    assert set(_addresses(document)) - delivery == topics | hooks
    assert _published(document) == topics
    assert "embedded" in document["servers"]  # no kafka in the example
    messages = {a: set(c["messages"]) for a, c in _addresses(document).items()}
    assert messages["chat.messages"] == {"canonicalEvent"}
    assert messages["relay.raw"] == {"rawBody"}
    assert messages["relay.deadletter"] == {"deadLetter", "deliveryDeadLetter"}
    assert messages["/v1/hooks/nexloo"] == {"chatwootWebhook", "hookAccepted", "hookError"}
    plug = _addresses(document)["/v1/hooks/plugchat/{kind}"]
    assert len(plug["parameters"]["kind"]["enum"]) == 7
    rendered = json.dumps(document)
    assert "dev-nexloo-token" not in rendered and "dev-plugchat-token" not in rendered


def test_asyncapi_follows_kafka_topics_and_routes() -> None:
    config = make_config(
        """
kafka: {bootstrap_servers: "k1:9092,k2:9092", client_id: relay-prod}
sources:
  acme.eu: {provider: chatwoot, tokens: ["${T}"], signing_secret: s3cret}
  plug: {provider: plugchat, allow_cidrs: [203.0.113.0/24]}
topics: {events: ev.all, raw: ev.raw, deadletter: ev.dlq}
routes:
  - {name: incoming, match: {where: {data.message.direction: incoming}}, topic: ev.in}
  - {name: plug-in, match: {provider: plugchat, type: "chat.message.*"}, topic: ev.in}
  - {name: contacts, match: {type: "chat.contact.*"}, topic: ev.all}
  - {name: lookalike, match: {type: chat.typing.started}, topic: ev-in}
""",
        T="tok-123",
    )
    document = asyncapi(config)
    _assert_valid_asyncapi(document)
    assert _published(document) == {"ev.all", "ev.in", "ev-in", "ev.raw", "ev.dlq"}
    channels = _addresses(document)
    assert [r["name"] for r in channels["ev.in"]["x-relay-routes"]] == ["incoming", "plug-in"]
    assert [r["name"] for r in channels["ev.all"]["x-relay-routes"]] == ["contacts"]
    assert channels["ev.in"]["bindings"]["kafka"]["topic"] == "ev.in"
    assert document["servers"]["kafka"]["host"] == "k1:9092,k2:9092"
    operations = document["operations"].values()
    client_ids = {
        op["bindings"]["kafka"]["clientId"]["enum"][0]
        for op in operations
        if op["action"] == "send"
    }
    assert client_ids == {"relay-prod"}
    receive = {op["title"]: op for op in operations if op["action"] == "receive"}
    assert receive["Receive acme.eu webhooks"]["x-relay-authentication"] == [
        "token",
        "chatwoot-signature",
    ]
    assert "security" in receive["Receive acme.eu webhooks"]
    assert receive["Receive plug webhooks"]["x-relay-authentication"] == ["cidr-allowlist"]
    rendered = json.dumps(document)
    assert "tok-123" not in rendered and "s3cret" not in rendered


def test_asyncapi_describes_delivery_to_subscribers() -> None:
    config = make_config(
        """
kafka: {bootstrap_servers: "k1:9092"}
routes: [{name: m, match: {type: "chat.message.*"}, topic: chat.messages}]
subscribers:
  - name: crm
    url: https://user:pw@crm.example.com:8443/hooks/chat?key=s3cret
    topics: [chat.messages, legacy.events]
    match: {where: {data.message.direction: incoming}}
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
  - {name: bi, url: "http://bi.internal/in", format: data}
"""
    )
    document = asyncapi(config)
    _assert_valid_asyncapi(document)
    crm = document["servers"]["subscriber-crm"]
    assert (crm["host"], crm["protocol"]) == ("crm.example.com:8443", "https")
    channels = _addresses(document)
    assert channels["/hooks/chat"]["messages"].keys() == {"subscriberEvent"}
    assert channels["/in"]["messages"].keys() == {"subscriberData"}
    # relay reads legacy.events for crm but never writes it.
    assert "legacy.events" in channels and "legacy.events" not in _published(document)
    operations = document["operations"]
    deliver = operations["deliver-subscriber-crm"]
    assert deliver["x-relay-topics"] == ["chat.messages", "legacy.events"]
    assert deliver["x-relay-match"] == {"where": {"data.message.direction": "incoming"}}
    groups = {
        op["bindings"]["kafka"]["groupId"]["enum"][0]
        for op in operations.values()
        if op["action"] == "receive" and "kafka" in op.get("bindings", {})
    }
    assert groups == {"relay.sub.crm", "relay.sub.bi"}
    rendered = json.dumps(document)
    assert "s3cret" not in rendered and "pw@" not in rendered and "whsec_" not in rendered


def test_asyncapi_payload_is_the_canonical_schema() -> None:
    document = asyncapi(Config())
    wrapper = {"$ref": "#/components/schemas/CloudEvent", "components": document["components"]}
    validator = jsonschema.Draft202012Validator(wrapper)
    for relative, provider, kind in FIXTURE_FILES[:: max(1, len(FIXTURE_FILES) // 8)]:
        for event in fixture_events(relative, provider, kind):
            validator.validate(event)
    assert not validator.is_valid({"specversion": "1.0"})


def test_cli_asyncapi(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["asyncapi", "--config", str(EXAMPLE)]) == 0
    document = yaml.safe_load(capsys.readouterr().out)
    assert document == json.loads(json.dumps(asyncapi(make_config(EXAMPLE.read_text()))))
    assert main(["asyncapi", "--config", str(EXAMPLE), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["asyncapi"] == "3.0.0"
    monkeypatch.delenv("RELAY_CONFIG", raising=False)
    assert main(["asyncapi"]) == 0  # no configuration: the defaults
    assert "relay.deadletter" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("topics: {raw: 3}\n")
    assert main(["asyncapi", "--config", str(bad)]) == 1
    assert capsys.readouterr().err.startswith("relay: topics.raw")
