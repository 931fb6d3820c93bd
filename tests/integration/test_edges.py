"""Quiet, closed edges of a real ``relay serve``: one JSON stream with secrets redacted,
aiohttp's bad-request lines rate-limited, no versions in ``Server``, /metrics behind a token."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support import free_port, wait_ready

TOKEN = "plug-token-0123456789abcdef"
METRICS_TOKEN = "metrics-token-0123456789abcdef"


@dataclass
class Served:
    port: int
    process: asyncio.subprocess.Process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> list[str]:
        """SIGTERM, then every line it wrote to stderr."""
        if self.process.returncode is None:
            self.process.terminate()
        _, stderr = await self.process.communicate()
        return stderr.decode().splitlines()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    config = tmp_path / "relay.yaml"
    config.write_text(
        f"""
data_dir: {tmp_path / "var"}
sources:
  plugchat: {{provider: plugchat, tokens: ["{TOKEN}"]}}
metrics: {{token: "{METRICS_TOKEN}"}}
logging: {{level: info, format: json}}
"""
    )
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "relay", "serve", "--config", str(config)),
        *("--host", "127.0.0.1", "--port", str(port)),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    served = Served(port, process)
    try:
        await wait_ready(port, process)
        yield served
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _raw(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(5):
            return await reader.read()
    finally:
        writer.close()


async def test_a_malformed_request_is_one_redacted_json_line_and_floods_are_cut(
    served: Served,
) -> None:
    # A request line over aiohttp's limit, quoting the token, many times over.
    line = b"POST /v1/hooks/plugchat/receiveMessage?token=" + TOKEN.encode() + b"&x=" + b"a" * 9000
    for _ in range(30):
        answer = await _raw(served.port, line + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.startswith((b"HTTP/1.0 400", b"HTTP/1.1 400"))
        assert b"aiohttp" not in answer and b"Python/" not in answer
    lines = await served.stop()
    events = [json.loads(line) for line in lines]  # every line is JSON: no traceback
    bad = [e for e in events if e["event"] == "http_bad_request"]
    assert 1 <= len(bad) <= 5  # rate-limited: 30 requests, a handful of lines
    assert bad[0]["level"] == "warning"
    assert bad[0]["logger"] == "aiohttp.server"
    assert "LineTooLong" in bad[0]["error"]
    assert "token=***" in bad[0]["error"]
    assert TOKEN not in "\n".join(lines)
    assert all("exception" not in e for e in bad)


async def test_no_server_versions_and_metrics_need_their_token(served: Served) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{served.url}/healthz") as response:
            assert response.headers["Server"] == "relay"
        async with session.get(f"{served.url}/metrics") as response:
            assert response.status == 401
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert "relay_requests_total" not in await response.text()
        wrong = {"Authorization": f"Bearer {TOKEN}"}  # a source's token is not the metrics one
        async with session.get(f"{served.url}/metrics", headers=wrong) as response:
            assert response.status == 401
        right = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        async with session.get(f"{served.url}/metrics", headers=right) as response:
            assert response.status == 200
            assert "relay_requests_total" in await response.text()
    await served.stop()


async def test_library_log_records_are_json_with_tokens_redacted() -> None:
    """A stdlib record (what aiokafka and aiohttp write) comes out as structlog JSON."""
    code = (
        "import logging, warnings; from relay.logs import configure; configure('info', 'json');"
        "logging.getLogger('aiokafka').error("
        "'Unable connect: %s', 'GET /x?token=abc123secret Authorization: Bearer xyz789secret');"
        "warnings.warn('old api', DeprecationWarning)"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await process.communicate()
    line, warning = stderr.decode().splitlines()
    assert json.loads(warning)["logger"] == "py.warnings"
    record = json.loads(line)
    assert record["logger"] == "aiokafka"
    assert record["level"] == "error"
    assert "abc123secret" not in line and "xyz789secret" not in line
    assert "token=***" in record["event"] and "Bearer ***" in record["event"]


async def test_the_metrics_token_guards_the_admin_listener_too(tmp_path: Path) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from relay.app import build_admin_app, build_app
    from tests.support import make_config

    config = make_config(
        f"data_dir: {tmp_path}\nmetrics: {{token: {METRICS_TOKEN}}}\n"
        "admin: {listen: {host: 127.0.0.1, port: 1}}\n"
    )
    admin: TestClient[Any, Any] = TestClient(TestServer(build_admin_app(build_app(config))))
    await admin.start_server()
    try:
        assert (await admin.get("/metrics")).status == 401
        right = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        assert (await admin.get("/metrics", headers=right)).status == 200
    finally:
        await admin.close()


async def test_strangers_get_a_few_log_lines_a_minute_and_exact_counts(served: Served) -> None:
    async with aiohttp.ClientSession() as session:
        for n in range(30):
            path = "/v1/hooks/plugchat/receiveMessage?token=wrong" if n % 2 else "/v1/hooks/nobody"
            async with session.post(served.url + path, data=b"{}") as response:
                assert response.status == 401
        right = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        async with session.get(f"{served.url}/metrics", headers=right) as response:
            metrics = await response.text()
    assert 'relay_requests_total{outcome="unauthorized",source="plugchat"} 15.0' in metrics
    assert 'relay_requests_total{outcome="unknown_source",source="<unknown>"} 15.0' in metrics
    events = [json.loads(line) for line in await served.stop()]
    rejected = [e for e in events if e["event"] == "hook_rejected"]
    assert len(rejected) == 20  # the budget: 20 a minute, the rest only counted
    assert {e["reason"] for e in rejected} == {"unauthorized", "unknown_source"}
