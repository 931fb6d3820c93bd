"""The README's first command and its Try it, run as written: ``relay serve`` on the
embedded default as a real process, the curls over real HTTP, then ``relay tail`` and
``relay normalize``. Only the port (a free one for 8080), the data_dir (through the
example's ``RELAY_DATA_DIR``) and the ``.venv`` (this interpreter's) are this run's."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest

from tests.docs import ROOT, Shell, commands, executed, same_json, shell_env
from tests.support import free_port

pytestmark = pytest.mark.integration


def test_the_readme_try_it_runs_as_written(tmp_path: Path) -> None:
    first, *rest = executed("try-it")
    [command] = commands(first)
    venv, install, serve = command.text.split(" && ")
    # the first two steps made the interpreter running this test
    assert (venv, install) == ("python3 -m venv .venv", ".venv/bin/pip install -e .")
    assert importlib.metadata.distribution("relay").locate_file("") is not None

    port = free_port()
    env = shell_env(RELAY_PORT=str(port), RELAY_DATA_DIR=str(tmp_path / "var"))
    replace = {"127.0.0.1:8080": f"127.0.0.1:{port}"}
    log = tmp_path / "relay.log"
    accepted: list[str] = []
    normalized: list[str] = []
    sh = Shell(env=env, replace=replace)
    with sh.serving(serve, port, log):
        for block in rest:
            for step in commands(block):
                done = sh.run(step.text)
                where = f"{block.where}: {step.text}"
                assert done.returncode == 0, f"{where}: {done.stderr}"
                assert done.stdout.strip(), f"{where} printed nothing"
                for shown in step.shown:
                    assert same_json(shown, done.stdout), f"{where}: printed {done.stdout}"
                if "curl" in step.text:
                    accepted.extend(json.loads(done.stdout)["ids"])
                if "relay normalize" in step.text:
                    normalized.append(json.loads(done.stdout.splitlines()[0])["id"])
    # "so the id is the 03fad111-… above": normalize --source nexloo gives the server's id
    assert normalized[0] == accepted[0]
    # "its listening log line carries the pid"
    [listening] = [
        json.loads(line) for line in log.read_text().splitlines() if '"listening"' in line
    ]
    assert isinstance(listening["pid"], int)


def test_the_readme_shows_what_the_example_listens_on() -> None:
    text = (ROOT / "README.md").read_text()
    assert "listening on `127.0.0.1:8080`" in text
    example = (ROOT / "config" / "relay.example.yaml").read_text()
    assert "host: ${RELAY_HOST:-127.0.0.1}" in example and "port: ${RELAY_PORT:-8080}" in example
