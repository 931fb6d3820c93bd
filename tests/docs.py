"""The code blocks of README.md and docs/*.md, for the tests that run or lint them.

Every fenced block says in its info string what happens to it (docs/development.md,
"Examples in the docs"): ```` ```sh run=try-it ```` is executed by the test that claims
``try-it``; ```` ```sh lint=docker ```` cannot run here and is only linted; ```` ```json output ````
is what the block before it prints; ```` ```text ```` is an illustration (a log line, a diagram).
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
VENV_BIN = Path(sys.executable).parent

_FENCE = re.compile(r"^(\s*)```(.*)$")


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    marks: dict[str, str]
    text: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(pages: list[Path] | None = None) -> list[Block]:
    found = []
    for page in pages or PAGES:
        lines = page.read_text().splitlines()
        i = 0
        while i < len(lines):
            opening = _FENCE.match(lines[i])
            if not opening:
                i += 1
                continue
            indent, info = opening.group(1), opening.group(2).split()
            body = []
            j = i + 1
            while not re.match(rf"^{re.escape(indent)}```\s*$", lines[j]):
                body.append(lines[j].removeprefix(indent))
                j += 1
            marks = dict(word.partition("=")[::2] for word in info[1:])
            lang = info[0] if info else ""
            found.append(Block(page, i + 1, lang, marks, "\n".join(body) + "\n"))
            i = j + 1
    return found


def executed(name: str) -> list[Block]:
    """The blocks marked ``run=<name>``, in page order: at least one, or the page moved."""
    chosen = [block for block in blocks() if block.marks.get("run") == name]
    assert chosen, f"no block is marked run={name}"
    return chosen


@dataclass
class Command:
    """One shell command of a block, with the full-line ``# ...`` comments after it (what
    it prints, when the page shows it)."""

    text: str
    shown: list[str] = field(default_factory=list)


def commands(block: Block) -> list[Command]:
    found: list[Command] = []
    pending = ""
    for line in block.text.splitlines():
        if pending:
            pending += "\n" + line
        elif line.startswith("# ") and found:
            found[-1].shown.append(line[2:])
            continue
        elif not line.strip() or line.startswith("#"):
            continue
        else:
            pending = line
        if not pending.endswith("\\"):
            found.append(Command(pending))
            pending = ""
    assert not pending, f"{block.where}: a command ends in a backslash"
    return found


def shell_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAY_", "KAFKA_"))}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env | extra


def localize(command: str, replace: dict[str, str] | None = None) -> str:
    """The command as it runs here: ``.venv/bin/`` is this interpreter's, and ``replace``
    swaps what a page writes for what this run uses (a free port for 8080, a token)."""
    command = command.replace(".venv/bin/", f"{VENV_BIN}/")
    for old, new in (replace or {}).items():
        command = command.replace(old, new)
    return command


def run(
    command: str,
    *,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    replace: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """One command through bash with ``pipefail``, as a reader would paste it."""
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", localize(command, replace)],
        cwd=cwd,
        env=env or shell_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def relay_argv(command: str) -> list[list[str]]:
    """The argument lists of every ``relay`` invocation in a command line (after
    environment assignments; up to a pipe, ``&&``, ``;``, a redirection or a comment)."""
    lexer = shlex.shlex(command.replace("\\\n", " "), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words = list(lexer)
    found: list[list[str]] = []
    current: list[str] | None = None
    at_command = True  # the next word (after assignments) names the program
    for word in words:
        if word and set(word) <= set("|&;<>()"):
            current, at_command = None, True
        elif current is not None:
            current.append(word)
        elif at_command and not re.match(r"^\w+=", word):
            at_command = False
            if word == "relay" or word.endswith("bin/relay"):
                current = []
                found.append(current)
    return found


def same_json(shown: str, printed: str) -> bool:
    """A JSON value a page shows equals what was printed; a string the page cuts with
    ``…`` matches any string that starts with what comes before it."""

    def match(a: object, b: object) -> bool:
        if isinstance(a, str) and a.endswith("…"):
            return isinstance(b, str) and b.startswith(a[:-1])
        if isinstance(a, dict) and isinstance(b, dict):
            return a.keys() == b.keys() and all(match(a[k], b[k]) for k in a)
        if isinstance(a, list) and isinstance(b, list):
            return len(a) == len(b) and all(map(match, a, b))
        return a == b

    return match(json.loads(shown), json.loads(printed))


@contextmanager
def serving(
    command: str,
    port: int,
    *,
    log: Path,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    replace: dict[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """A ``relay serve`` command of a page, running until the block ends: ready when its
    ``/readyz`` answers 200 on ``port``; stopped with SIGTERM, and it must exit 0."""
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen(
            ["bash", "-c", "exec " + localize(command, replace)],
            cwd=cwd,
            env=env or shell_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise AssertionError(f"{command!r} exited: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{command!r} not ready: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert code == 0, f"{command!r} exited {code}: {log.read_text()[-2000:]}"


def in_process(
    argv: list[str], *, cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """``relay <argv>`` in this process, in ``cwd`` with ``env``, its output captured."""
    from relay.cli import main

    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
    saved_env, saved_cwd = dict(os.environ), Path.cwd()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    out.flush()
    err.flush()
    printed = [stream.buffer.getvalue().decode() for stream in (out, err)]  # type: ignore[attr-defined]
    return subprocess.CompletedProcess(["relay", *argv], code, *printed)


@dataclass
class Shell:
    """Where a page's commands run: a directory, the environment, what stands for what."""

    cwd: Path = ROOT
    env: dict[str, str] = field(default_factory=shell_env)
    replace: dict[str, str] = field(default_factory=dict)

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        """Through bash; a bare ``relay …`` line (no pipe, redirection or expansion) runs
        in this process through ``relay.cli.main`` with the argv bash would give it, which
        saves a second of interpreter start per command."""
        argv = relay_argv(command)
        if len(argv) == 1 and not re.search(r"[|&;<>$`]", command.partition("#")[0]):
            return in_process(argv[0], cwd=self.cwd, env=self.env)
        return run(command, cwd=self.cwd, env=self.env, replace=self.replace)

    def ok(self, command: str, where: str = "") -> subprocess.CompletedProcess[str]:
        done = self.run(command)
        assert done.returncode == 0, f"{where}: {command}: exit {done.returncode}: {done.stderr}"
        return done

    def serving(
        self, command: str, port: int, log: Path
    ) -> AbstractContextManager[subprocess.Popen[bytes]]:
        return serving(command, port, log=log, cwd=self.cwd, env=self.env, replace=self.replace)

    def post(self, port: int, body: Path) -> dict[str, Any]:
        """A Chatwoot webhook to the example's ``nexloo`` source: its 202 answer."""
        done = self.ok(
            f"curl -sf -X POST 'http://127.0.0.1:{port}/v1/hooks/nexloo?token=dev-nexloo-token'"
            f" -H 'Content-Type: application/json' --data-binary @{body}"
        )
        answer: dict[str, Any] = json.loads(done.stdout)
        return answer
