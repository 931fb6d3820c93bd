"""The operator's blocks of docs/ run as written against ``relay serve`` on the embedded
log: reading why an event was dead-lettered (operations.md), replaying it once the
subscriber is fixed (delivery.md), the admin API and a hot reload (operations.md), and
two roles side by side (deployment.md).

The pages write ``relay.yaml``: here it is the example configuration with its
``subscribers:`` block uncommented, fewer and quicker retries (so a dead letter comes in a
second, not half an hour) and ``admin.token`` from ``ADMIN_TOKEN``, in a directory of its
own. A free port stands for 8080 and 8081."""

from __future__ import annotations

import json
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.docs import ROOT, Command, Shell, commands, executed, localize, same_json, shell_env
from tests.support import free_port

pytestmark = pytest.mark.integration

EXAMPLE = ROOT / "config" / "relay.example.yaml"
BODY = ROOT / "tests" / "fixtures" / "chatwoot" / "message_created.json"


def _uncommented_subscribers(text: str) -> str:
    lines = text.splitlines()
    start = lines.index("#subscribers:")
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("#"))
    lines[start:end] = [line[1:] for line in lines[start:end]]
    return "\n".join(lines) + "\n"


class Endpoint(ThreadingHTTPServer):
    """The subscriber: answers ``status`` with ``nope`` as the body, counts deliveries."""

    status = 500
    delivered = 0


class _Handler(BaseHTTPRequestHandler):
    server: Endpoint

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(self.server.status)
        self.send_header("Content-Length", "4")
        self.end_headers()
        self.wfile.write(b"nope")
        if self.server.status < 300:
            self.server.delivered += 1

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    server = Endpoint(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _until(check: object, what: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while not callable(check) or not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_an_operator_reads_a_dead_letter_replays_it_and_reloads(
    tmp_path: Path, endpoint: Endpoint
) -> None:
    config = _uncommented_subscribers(EXAMPLE.read_text())
    config = config.replace("max_attempts: 12, initial: 1s", "max_attempts: 2, initial: 100ms")
    config += "\nadmin:\n  token: ${ADMIN_TOKEN}\n"
    (tmp_path / "relay.yaml").write_text(config)
    port, token = free_port(), secrets.token_hex(24)
    env = shell_env(
        RELAY_PORT=str(port),
        RELAY_DATA_DIR=str(tmp_path / "var"),
        CRM_URL=f"http://127.0.0.1:{endpoint.server_port}/hooks/chat",
        ADMIN_TOKEN=token,
    )
    replace = {"127.0.0.1:8080": f"127.0.0.1:{port}", "Bearer …": f"Bearer {token}"}
    sh = Shell(tmp_path, env, replace)
    tail_deadletters = "relay tail --config relay.yaml --deadletter --subscriber crm"

    with sh.serving("relay serve --config relay.yaml", port, tmp_path / "relay.log"):
        [event_id] = sh.post(port, BODY)["ids"]
        _until(lambda: sh.run(tail_deadletters).stdout.strip(), "the dead letter")

        # operations.md: why was it dead-lettered?
        [block] = executed("deadletters")
        why, follow = commands(block)
        missing = [tool for tool in ("jq", "sqlite3") if shutil.which(tool) is None]
        if "jq" not in missing:
            done = sh.ok(why.text, block.where)
            [shown] = why.shown
            printed = json.loads(done.stdout)
            assert isinstance(printed.pop("offset"), int)  # an offset of this run's log
            expected = json.loads(shown)
            del expected["offset"]
            assert printed == expected, f"{block.where}: printed {done.stdout}"
        _follows(follow, tmp_path, env, event_id)

        # delivery.md: fix the endpoint, replay
        endpoint.status = 200
        [block] = executed("replay")
        for step in commands(block):
            done = sh.ok(step.text, block.where)
            for shown in step.shown:
                assert done.stdout.splitlines() == [shown], f"{block.where}: {done.stdout}"
        assert endpoint.delivered >= 1

        # operations.md: the admin API and a reload
        [block] = executed("admin-api")
        search, redrive = commands(block)
        _until(lambda: event_id in sh.ok(search.text, block.where).stdout, "the index")
        answer = json.loads(sh.ok(redrive.text, block.where).stdout)
        assert answer["subscriber"] == "crm" and answer["redriving"] == 1, answer
        [block] = executed("reload")
        [step] = commands(block)
        done = sh.ok(step.text, block.where)
        [shown] = step.shown
        assert same_json(shown, done.stdout), f"{block.where}: printed {done.stdout}"

        # operations.md: a backup taken while relay runs holds what the live log holds
        if "sqlite3" not in missing:
            [block] = executed("backup")
            for step in commands(block):
                sh.ok(step.text, block.where)
            tail = "relay tail --config relay.yaml --topic chat.messages --headers"
            live = sh.ok(tail).stdout
    if "sqlite3" not in missing:
        restored = Shell(tmp_path, env | {"RELAY_DATA_DIR": str(tmp_path / "backup")}).ok(tail)
        assert restored.stdout == live and event_id in live
    if missing:  # everything else ran
        pytest.skip(f"not run: the blocks that use {missing} (apt-get install {' '.join(missing)})")


def _follows(step: Command, cwd: Path, env: dict[str, str], event_id: str) -> None:
    """``--follow`` prints what is there and keeps going until interrupted."""
    assert "--follow" in step.text
    process = subprocess.Popen(
        ["bash", "-c", "exec " + localize(step.text)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as an operator's terminal starts it: SIGINT at its default (an ignored SIGINT
        # survives exec, and a test process may have inherited one)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert process.stdout is not None
        first = json.loads(process.stdout.readline())
        assert first["topic"] == "chat.messages" and first["value"]["id"] == event_id
        time.sleep(0.3)
        assert process.poll() is None, "--follow stopped by itself"
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=10)
    assert "Traceback" not in err, err


def test_two_roles_run_side_by_side_as_the_page_shows(tmp_path: Path) -> None:
    [block] = executed("roles")
    ingress, delivery = commands(block)
    (tmp_path / "relay.yaml").write_text(EXAMPLE.read_text())
    port, second = free_port(), free_port()
    env = shell_env(RELAY_PORT=str(port), RELAY_DATA_DIR=str(tmp_path / "var"))
    sh = Shell(tmp_path, env, {"--port 8081": f"--port {second}"})
    with sh.serving_all(
        [
            (ingress.text, port, tmp_path / "ingress.log"),
            (delivery.text, second, tmp_path / "delivery.log"),
        ]
    ):
        assert sh.post(port, BODY)["accepted"] == 1
        hooks = sh.run(
            f"curl -s -o /dev/null -w '%{{http_code}}' -X POST http://127.0.0.1:{second}/v1/hooks/nexloo"
        )
        assert hooks.stdout == "404", "the delivery role serves no hooks"
