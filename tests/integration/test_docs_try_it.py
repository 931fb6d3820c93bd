"""The README's first command and its Try it, run as written: ``relay serve`` on the
embedded default as a real process, the curls over real HTTP, ``relay tail`` and
``relay normalize``, then a subscriber added by uncommenting the example's block and a
``SIGHUP``. Only the port (a free one for 8080 and 9000), the data_dir (through the
example's ``RELAY_DATA_DIR``) and the ``.venv`` (this interpreter's) are this run's; the
commands run in a copy of the checkout's layout whose ``config/`` the test may edit."""

from __future__ import annotations

import importlib.metadata
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.broker import wait_for_port
from tests.docs import ROOT, Command, Shell, commands, executed, localize, same_json, shell_env
from tests.support import free_port

pytestmark = pytest.mark.integration


def _checkout(tmp_path: Path) -> Path:
    """The paths the README's commands name: its config to edit, the rest as they are."""
    root = tmp_path / "checkout"
    (root / "config").mkdir(parents=True)
    (root / "config" / "relay.example.yaml").write_text(
        (ROOT / "config" / "relay.example.yaml").read_text()
    )
    for shared in ("tests", "deploy"):
        (root / shared).symlink_to(ROOT / shared)
    return root


def _uncomment_subscribers(path: Path) -> None:
    lines = path.read_text().splitlines()
    start = lines.index("#subscribers:")
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("#"))
    lines[start:end] = [line[1:] for line in lines[start:end]]
    path.write_text("\n".join(lines) + "\n")


def _shows(sh: Shell, step: Command, where: str, within: float = 60) -> str:
    """Run ``step`` until what it prints holds every line the page shows after it (a
    counter added once a second takes a moment), then return its output."""
    deadline = time.monotonic() + within
    while True:
        done = sh.run(step.text)  # a grep finds nothing until the counter is there
        printed = done.stdout
        if done.returncode == 0 and all(
            same_json(shown, printed) if shown.startswith("{") else shown in printed.splitlines()
            for shown in step.shown
        ):
            return printed
        if time.monotonic() > deadline or not step.shown:
            raise AssertionError(
                f"{where}: exit {done.returncode}, printed {printed!r}, not {step.shown}: "
                f"{done.stderr}"
            )
        time.sleep(0.2)


def test_the_readme_try_it_runs_as_written(tmp_path: Path) -> None:
    first, *rest = executed("try-it")
    [command] = commands(first)
    venv, install, serve = command.text.split(" && ")
    # the first two steps made the interpreter running this test
    assert (venv, install) == ("python3 -m venv .venv", ".venv/bin/pip install -e .")
    assert importlib.metadata.distribution("relay").locate_file("") is not None

    checkout = _checkout(tmp_path)
    port, echo = free_port(), free_port()
    env = shell_env(
        RELAY_PORT=str(port),
        RELAY_DATA_DIR=str(tmp_path / "var"),
        CRM_URL=f"http://127.0.0.1:{echo}/hooks/chat",  # the example's URL, on a free port
        PORT=str(echo),
    )
    sh = Shell(checkout, env, {"127.0.0.1:8080": f"127.0.0.1:{port}"})
    log = tmp_path / "relay.log"
    accepted: list[str] = []
    normalized: list[str] = []
    background: list[subprocess.Popen[bytes]] = []
    try:
        with sh.serving(serve, port, log) as relay:
            for block in rest:
                if "deploy/subscriber/echo.py" in block.text:  # the prose says: uncomment it
                    _uncomment_subscribers(checkout / "config" / "relay.example.yaml")
                    [listening] = [
                        json.loads(line)
                        for line in log.read_text().splitlines()
                        if '"listening"' in line
                    ]
                    assert listening["pid"] == relay.pid  # "the pid its listening line shows"
                    sh.env["RELAY_PID"] = str(listening["pid"])
                for step in commands(block):
                    where = f"{block.where}: {step.text}"
                    if step.text.split("#")[0].rstrip().endswith("&"):
                        background.append(_start(sh, step))
                        wait_for_port(echo)  # as a reader sees it start before going on
                        continue
                    printed = _shows(sh, step, where)
                    assert printed.strip() or "kill" in step.text, f"{where} printed nothing"
                    if "curl -s -X POST" in step.text:
                        accepted.extend(json.loads(printed)["ids"])
                    if "relay normalize" in step.text:
                        normalized.append(json.loads(printed.splitlines()[0])["id"])
    finally:
        for process in background:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=10)
    # "so the id is the 03fad111-… above": normalize --source nexloo gives the server's id
    assert normalized[0] == accepted[0]
    assert '"event": "reloaded"' in log.read_text()


def _start(sh: Shell, step: Command) -> subprocess.Popen[bytes]:
    """A command the page runs in the background (``… &``), until the test ends."""
    command = step.text.split("#")[0].rstrip().removesuffix("&")
    return subprocess.Popen(
        ["bash", "-c", localize(command, sh.replace)],
        cwd=sh.cwd,
        env=sh.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, ended with the test
    )


def test_the_readme_shows_what_the_example_listens_on() -> None:
    text = (ROOT / "README.md").read_text()
    assert "listening on `127.0.0.1:8080`" in text
    example = (ROOT / "config" / "relay.example.yaml").read_text()
    assert "host: ${RELAY_HOST:-127.0.0.1}" in example and "port: ${RELAY_PORT:-8080}" in example
