"""Property: no body, header or path a client can send gets a 5xx or kills relay.

relay runs in a background thread on a real loopback port (embedded log on disk);
hypothesis drives plain HTTP requests at it.
"""

from __future__ import annotations

import asyncio
import http.client
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.app import build_app
from tests.support import free_port, make_config

TOKEN = "fuzz-token"


@pytest.fixture(scope="module")
def relay_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    config = make_config(
        f"""
data_dir: {data_dir}
sources:
  cw: {{provider: chatwoot, tokens: ["{TOKEN}"]}}
  signed: {{provider: chatwoot, signing_secret: s3cret}}
  pc: {{provider: plugchat, tokens: ["{TOKEN}"]}}
limits: {{max_body_bytes: 4096, body_timeout: 2s}}
"""
    )
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(build_app(config))
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10)
    yield port
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def request(
    port: int, method: str, path: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# latin-1 on the wire: 0x80-0xff arrive as bytes aiohttp cannot decode as UTF-8
header_values = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=40,
)
paths = st.sampled_from(
    [
        "/v1/hooks/cw",
        f"/v1/hooks/cw?token={TOKEN}",
        f"/v1/hooks/pc/receiveMessage?token={TOKEN}",
        f"/v1/hooks/pc/finish-attendance?token={TOKEN}",
        f"/v1/hooks/pc/nope?token={TOKEN}",
        "/v1/hooks/signed",
        "/v1/hooks/unknown",
        "/v1/hooks/",
        "/healthz",
        "/readyz",
        "/v1/hooks/cw/%00%ff",
        "/v1/hooks/" + "a" * 300,
    ]
)
json_bodies = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
).map(lambda v: __import__("json").dumps(v).encode())
bodies = st.binary(max_size=6000) | json_bodies


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "DELETE", "OPTIONS"]),
    path=paths,
    body=bodies,
    content_type=st.sampled_from(
        ["application/json", "application/json; charset=latin1", "text/plain", "", "*/*"]
    )
    | header_values,
    extra=st.dictionaries(
        st.sampled_from(
            [
                "X-Relay-Token",
                "Authorization",
                "X-Chatwoot-Signature",
                "X-Chatwoot-Timestamp",
                "X-Chatwoot-Delivery",
                "X-Request-Id",
                "Content-Encoding",
            ]
        ),
        header_values | st.sampled_from(["gzip", "deflate", "br", "identity", "gzip, br"]),
        max_size=4,
    ),
)
def test_no_input_gets_a_5xx(
    relay_port: int,
    method: str,
    path: str,
    body: bytes,
    content_type: str,
    extra: dict[str, str],
) -> None:
    headers = {"Content-Type": content_type, **extra} if content_type else dict(extra)
    status, answer = request(relay_port, method, path, body, headers)
    assert status < 500, answer
    if status >= 400 and not answer.startswith(b'{"error":'):
        # Only aiohttp's HTTP parser answers in plain text, before relay sees the request:
        # a request it cannot parse (an encoding it cannot decode, say) is a bare 400.
        assert status == 400, answer
    # and relay is still alive
    assert request(relay_port, "GET", "/healthz", b"", {})[0] == 200
