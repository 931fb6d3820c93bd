"""Tracing's pure parts: when it is on, reading a caller's trace context, the wire forms."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import msgspec
import pytest
from multidict import CIMultiDict
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from relay import telemetry
from relay.cli import main
from relay.cloudevents import decode, encode, from_binary, http_binary_headers, to_binary
from relay.config import ConfigError
from relay.events import CloudEvent
from relay.telemetry.otel import Tracing
from tests.factories import normalize
from tests.support import fixture_bytes, make_config

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
VALID = f"00-{TRACE}-{SPAN}-01"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracing(exporter: InMemorySpanExporter) -> Tracing:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider)


# --- on or off ---------------------------------------------------------------------------


def test_off_without_an_endpoint() -> None:
    config = make_config("{}")
    assert telemetry.otlp_endpoint(config.telemetry, {}) is None
    assert telemetry.start(config, {}) is None
    assert telemetry.problem(config, {}) is None


def test_the_configuration_wins_over_the_environment() -> None:
    config = make_config("telemetry: {otlp_endpoint: 'http://collector:4318'}")
    environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://other:4318"}
    assert telemetry.otlp_endpoint(config.telemetry, environ) == "http://collector:4318"


@pytest.mark.parametrize(
    "variable", ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
)
def test_the_standard_variables_turn_it_on(variable: str) -> None:
    config = make_config("{}")
    assert telemetry.otlp_endpoint(config.telemetry, {variable: "http://c:4318"}) == "http://c:4318"


def test_an_unset_variable_or_the_sdk_switch_keeps_it_off() -> None:
    empty = make_config("telemetry: {otlp_endpoint: '${OTLP:-}'}")
    assert telemetry.otlp_endpoint(empty.telemetry, {"OTEL_EXPORTER_OTLP_ENDPOINT": " "}) is None
    on = make_config("telemetry: {otlp_endpoint: 'http://collector:4318'}")
    assert telemetry.otlp_endpoint(on.telemetry, {"OTEL_SDK_DISABLED": "true"}) is None


def test_traces_go_to_v1_traces() -> None:
    assert telemetry.traces_url("http://c:4318") == "http://c:4318/v1/traces"
    assert telemetry.traces_url("http://c:4318/") == "http://c:4318/v1/traces"
    assert telemetry.traces_url("http://c:4318/v1/traces") == "http://c:4318/v1/traces"


def test_a_bad_endpoint_is_a_config_error_with_its_path() -> None:
    with pytest.raises(ConfigError, match=r"telemetry\.otlp_endpoint: expected .*'collector:4318'"):
        make_config("telemetry: {otlp_endpoint: 'collector:4318'}")
    with pytest.raises(ConfigError, match="telemetry"):
        make_config("telemetry: {endpoint: 'http://c:4318'}")


def test_grpc_is_refused_with_the_reason() -> None:
    config = make_config("telemetry: {otlp_endpoint: 'http://c:4317'}")
    environ = {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    reason = telemetry.problem(config, environ)
    assert reason is not None and "http/protobuf" in reason
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_PROTOCOL=grpc"):
        telemetry.start(config, environ)


def test_start_builds_an_exporting_tracer() -> None:
    config = make_config("telemetry: {otlp_endpoint: 'http://127.0.0.1:4318', service_name: t}")
    tracing = telemetry.start(config, {})
    assert tracing is not None
    try:
        assert tracing.provider.resource.attributes["service.name"] == "t"
    finally:
        tracing.shutdown()


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **env},
        check=False,
    )


def test_off_imports_no_opentelemetry(tmp_path: object) -> None:
    """Building and running the app untraced loads not one OpenTelemetry module."""
    result = run_python(
        f"""
        import asyncio, sys
        from aiohttp.test_utils import TestClient, TestServer
        from relay import telemetry
        from relay.app import build_app
        from relay.config import parse

        config = parse('''
        data_dir: {tmp_path}
        sources: {{nexloo: {{provider: chatwoot, tokens: [tok-0123456789abcdef]}}}}
        ''', env={{}})

        async def main():
            client = TestClient(TestServer(build_app(config, tracing=telemetry.start(config))))
            await client.start_server()
            response = await client.post(
                "/v1/hooks/nexloo?token=tok-0123456789abcdef",
                data=b'{{"event": "webwidget_triggered", "contact": {{"id": 1}}}}',
                headers={{"Content-Type": "application/json", "traceparent": "{VALID}"}},
            )
            assert response.status == 202, response.status
            await client.close()

        asyncio.run(main())
        loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
        print(loaded)
        sys.exit(1 if loaded else 0)
        """
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_endpoint_without_the_sdk_is_refused_before_start(tmp_path: object) -> None:
    """What `relay check` and `relay serve` say when relay[otel] is not installed."""
    result = run_python(
        """
        import sys
        sys.modules["opentelemetry.sdk.trace"] = None  # as if relay[otel] were not installed
        from relay import preflight
        from relay.config import parse
        config = parse("telemetry: {otlp_endpoint: 'http://c:4318'}", env={})
        print(preflight.libraries(config))
        """
    )
    assert result.returncode == 0, result.stderr
    assert "telemetry.otlp_endpoint is set, but the OpenTelemetry SDK is not installed" in (
        result.stdout
    )
    assert "pip install 'relay[otel]'" in result.stdout


# --- the caller's trace context ----------------------------------------------------------


def test_a_valid_traceparent_is_continued(tracing: Tracing) -> None:
    parent = trace.get_current_span(tracing.extract({"traceparent": VALID})).get_span_context()
    assert (format(parent.trace_id, "032x"), format(parent.span_id, "016x")) == (TRACE, SPAN)
    assert parent.is_remote and parent.trace_flags.sampled


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        f"00-{TRACE}-{SPAN}",  # no flags
        f"00-{TRACE[:-1]}-{SPAN}-01",  # short trace id
        f"00-{'0' * 32}-{SPAN}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero span id
        f"ff-{TRACE}-{SPAN}-01",  # the forbidden version
        f"00-{TRACE}-{SPAN}-01-extra",  # version 00 has exactly four fields
        f"00-{TRACE.upper()}-{SPAN}-01",  # upper-case hex is invalid
        f"00-{TRACE}-{SPAN}-01" + " " * 600,  # over-long
        "00-\udcff-" + SPAN,  # undecodable bytes as aiohttp gives them
    ],
)
def test_a_bad_traceparent_means_a_new_root_never_an_error(tracing: Tracing, value: str) -> None:
    context = tracing.extract({"traceparent": value})
    assert not trace.get_current_span(context).get_span_context().is_valid
    with tracing.receive({"traceparent": value}, "nexloo", None, "req-1") as span:
        assert span.get_span_context().is_valid  # relay's own root
    assert getattr(span, "parent", None) is None


def test_a_bad_traceparent_is_no_log_line(
    tracing: Tracing, caplog: pytest.LogCaptureFixture
) -> None:
    """Headers are anyone's to send: malformed ones must not write a line per request."""
    with caplog.at_level(logging.DEBUG):
        tracing.extract({"traceparent": "00-" + "a" * 600})
        tracing.extract({"traceparent": VALID, "tracestate": "bad key=\x01value"})
    assert [r for r in caplog.records if r.name.startswith("opentelemetry")] == []


def test_a_bad_tracestate_keeps_the_traceparent(tracing: Tracing) -> None:
    context = tracing.extract({"traceparent": VALID, "tracestate": "=no-key,,\x01"})
    parent = trace.get_current_span(context).get_span_context()
    assert format(parent.trace_id, "032x") == TRACE
    assert not parent.trace_state


def test_every_tracestate_header_counts(tracing: Tracing) -> None:
    headers = CIMultiDict([("traceparent", VALID), ("tracestate", "a=1"), ("TraceState", "b=2")])
    parent = trace.get_current_span(tracing.extract(headers)).get_span_context()
    assert parent.trace_state.to_header() == "a=1,b=2"


def test_the_receive_span_is_the_callers_child(
    tracing: Tracing, exporter: InMemorySpanExporter
) -> None:
    with tracing.receive(
        {"traceparent": VALID, "tracestate": "v=1"}, "plug" * 40, "receiveMessage", "req-7"
    ) as span:
        traceparent, tracestate = tracing.current()
        tracing.answered(span, "accepted", 202)
    [done] = exporter.get_finished_spans()
    assert done.parent is not None and format(done.parent.span_id, "016x") == SPAN
    own = format(done.get_span_context().span_id, "016x")  # type: ignore[union-attr]
    assert traceparent == f"00-{TRACE}-{own}-01"
    assert tracestate == "v=1"
    assert done.attributes is not None
    assert done.attributes["relay.source"] == ("plug" * 40)[:64]
    assert done.attributes["relay.kind"] == "receiveMessage"
    assert done.attributes["relay.outcome"] == "accepted"
    assert done.attributes["http.route"] == "/v1/hooks/{source}/{kind}"


# --- the wire forms ----------------------------------------------------------------------


def traced_event() -> CloudEvent:
    [event] = normalize("chatwoot", fixture_bytes("chatwoot/message_created.json"))
    return msgspec.structs.replace(event, traceparent=VALID, tracestate="v=1")


def test_structured_events_carry_the_extension_attributes() -> None:
    event = traced_event()
    wire = json.loads(encode(event))
    assert (wire["traceparent"], wire["tracestate"]) == (VALID, "v=1")
    assert decode(encode(event)) == event
    [untraced] = normalize("chatwoot", fixture_bytes("chatwoot/message_created.json"))
    assert "traceparent" not in json.loads(encode(untraced))


def test_binary_records_carry_ce_traceparent_headers() -> None:
    event = traced_event()
    value, headers = to_binary(event)
    named = dict(headers)
    assert (named["ce_traceparent"], named["ce_tracestate"]) == (VALID.encode(), b"v=1")
    assert from_binary(value, named) == event


def test_http_binary_mode_sends_the_extension_as_ce_headers() -> None:
    headers = http_binary_headers(traced_event())
    assert (headers["ce-traceparent"], headers["ce-tracestate"]) == (VALID, "v=1")


def test_endpoints_are_shown_without_credentials() -> None:
    assert telemetry.shown("https://user:secret@c.example:4318/otlp?api-key=k") == (
        "https://c.example:4318/otlp"
    )
    assert telemetry.shown("not a url") == "<an OTLP endpoint>"


def test_relay_check_says_where_spans_go(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in (*telemetry.ENDPOINT_VARIABLES, "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "relay.yaml"
    path.write_text(f"data_dir: {tmp_path}\n")
    assert main(["check", "--config", str(path)]) == 0
    assert "tracing  off\n" in capsys.readouterr().out
    path.write_text(
        f"data_dir: {tmp_path}\ntelemetry: {{otlp_endpoint: 'http://u:pw@collector:4318'}}\n"
    )
    assert main(["check", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "tracing  OTLP/HTTP to http://collector:4318\n" in out
    assert "pw" not in out
