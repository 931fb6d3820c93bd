"""The AsyncAPI document is assembled from the code's tables, and the tables are complete.

The code can only write what its tables hold (error codes read from the source here, dead-
letter reasons in tests/unit/test_deadletters.py, routes from real routers), and the
document lists exactly the tables. Adding a reason, an error code, a provider or a route
without the contract showing it fails one of these.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from aiohttp import web

import relay
from relay.app import build_admin_app, build_app
from relay.bus import Item
from relay.config import parse
from relay.contracts import asyncapi
from relay.deadletters import DELIVERY_REASONS, INGEST_REASONS, delivery_record
from relay.ingress.responses import _CODES, ERRORS
from relay.providers import PROVIDERS

PACKAGE = Path(relay.__file__).parent


@cache
def _nodes() -> tuple[ast.AST, ...]:
    return tuple(
        node
        for path in sorted(PACKAGE.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
    )


def _calls(name: str) -> Iterator[ast.Call]:
    """Every call of ``name(...)`` (a plain or attribute name) in relay/."""
    for node in _nodes():
        if isinstance(node, ast.Call):
            callee = node.func
            called = callee.attr if isinstance(callee, ast.Attribute) else None
            called = callee.id if isinstance(callee, ast.Name) else called
            if called == name:
                yield node


def _literal(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _message(document: dict[str, Any], name: str) -> dict[str, Any]:
    message: dict[str, Any] = document["components"]["messages"][name]
    return message


def test_the_dead_letter_reasons_in_the_contract_are_the_tables() -> None:
    """tests/unit/test_deadletters.py (and mypy, through the Literals) keep the code's
    reasons inside these tables; the document lists the tables exactly."""
    messages = asyncapi(parse(""))["components"]["messages"]
    ingest = messages["deadLetter"]["headers"]["properties"]["relay-reason"]
    assert ingest["enum"] == list(INGEST_REASONS)
    delivery = messages["deliveryDeadLetter"]["headers"]["properties"]["relay-reason"]
    assert delivery["enum"] == list(DELIVERY_REASONS)
    assert "delivery_crashed" in DELIVERY_REASONS  # it had drifted out of the old document


def test_the_delivery_dead_letter_headers_in_the_contract_are_those_written() -> None:
    """Every header a delivery dead letter carries, and only those, is in the contract."""
    item = Item(("chat.events", 0, 0), 3, "chat.events", b"k", b"{}", headers=(), timestamp_ms=0)
    record = delivery_record(
        "relay.deadletter",
        "crm",
        item,
        "id-1",
        reason="delivery_exhausted",
        attempts=2,
        status=None,
        error="boom",
    )
    headers = _message(asyncapi(parse("")), "deliveryDeadLetter")["headers"]
    assert [name for name, _ in record.headers] == list(headers["properties"])
    assert set(headers["required"]) <= dict(record.headers).keys()


def test_every_error_code_the_code_answers_is_in_the_contract() -> None:
    written = {_literal(call.args[1]) for call in _calls("error_response") if len(call.args) > 1}
    written |= {_literal(call.args[1]) for call in _calls("Rejected") if len(call.args) > 1}
    written |= {_literal(call.args[1]) for call in _calls("error_answer") if len(call.args) > 1}
    written |= set(_CODES.values())
    written.discard(None)
    codes = [error.code for error in ERRORS]
    assert {"not_here", "reload_refused", "payload_too_large"} <= written
    assert written <= set(codes), written - set(codes)
    document = asyncapi(parse(""))
    assert [entry["code"] for entry in document["x-relay-error-codes"]] == codes


def test_every_provider_is_in_the_contract() -> None:
    sources = "\n".join(f"  s{i}: {{provider: {name}}}" for i, name in enumerate(PROVIDERS))
    document = asyncapi(parse(f"sources:\n{sources}\n"))
    messages = document["components"]["messages"]
    for name in PROVIDERS:
        assert f"{name}Webhook" in messages, name
    raw = messages["rawBody"]["headers"]["properties"]["relay-provider"]
    assert raw["enum"] == sorted(PROVIDERS)
    hooks = [c for c in document["channels"].values() if c["address"].startswith("/v1/hooks/")]
    assert len(hooks) == len(PROVIDERS)


def _served(app: web.Application) -> set[tuple[str, str]]:
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }


def test_every_route_relay_serves_is_in_the_contract(tmp_path: Path) -> None:
    """Read from real applications' routers, both listener layouts: a route added anywhere
    but the tables the document reads fails here."""
    text = f"data_dir: '{tmp_path}'\nadmin: {{token: '{'t' * 32}'%s}}\n"
    main = build_app(parse(text % ""))
    split_app = build_app(parse(text % ", listen: {port: 9999}"))
    served = _served(main) | _served(split_app) | _served(build_admin_app(split_app))
    document = asyncapi(parse(text % ""))
    listed = {(e["method"], e["path"]) for e in document["x-relay-http-endpoints"]}
    hooks = {("POST", "/v1/hooks/{source}"), ("POST", "/v1/hooks/{source}/{kind}")}
    console = {(m, p) for m, p in served if p.startswith("/console")} - {("GET", "/console/")}
    assert served - hooks - console == listed
    assert all(e["description"] for e in document["x-relay-http-endpoints"])
