"""Every code block of README.md and docs/ is accounted for: run by a test, or linted here
when it cannot run on this machine (Docker, Kubernetes, a provider's API). The blocks that
need no server run here too: normalize outputs, the Python snippets, YAML through
``relay check``, ``relay schema``. Those that need a running relay or a broker run in
tests/integration/test_docs_*.py."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import pkgutil
import re
import socket
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from prometheus_client import REGISTRY

import relay
from relay import preflight
from relay.attempts import decode_attempt
from relay.cli import build_parser, main
from relay.config import Config, Kafka, Route, Source, Subscriber, Topics, webhook_secret
from relay.deadletters import DELIVERY_REASONS, INGEST_REASONS
from relay.delivery import signing
from tests.docs import (
    PAGES,
    ROOT,
    Block,
    Shell,
    blocks,
    commands,
    executed,
    relay_argv,
    run,
    shell_env,
)
from tests.pki import Pki, make_pki
from tests.support import FIXTURES, make_config

# Which test runs each ``run=<name>``; a name no test claims is a block nothing runs.
RUNS = {
    "try-it": "tests/integration/test_docs_try_it.py",
    "ci": "tests/unit/test_docs_examples.py",
    "events": "tests/unit/test_docs_examples.py",
    "contracts": "tests/unit/test_docs_examples.py",
    "python-api": "tests/unit/test_docs_examples.py",
    "signature": "tests/unit/test_docs_examples.py",
    "kafka-security": "tests/unit/test_docs_examples.py",
    "attempt-record": "tests/unit/test_docs_examples.py",
    "consumer": "tests/integration/test_consuming_doc.py",
    "deadletters": "tests/integration/test_docs_operating.py",
    "replay": "tests/integration/test_docs_operating.py",
    "admin-api": "tests/integration/test_docs_operating.py",
    "reload": "tests/integration/test_docs_operating.py",
    "roles": "tests/integration/test_docs_operating.py",
    "backup": "tests/integration/test_docs_operating.py",
    "kafka-local": "tests/integration/test_docs_kafka.py",
}
# Why a block may be linted instead of run: what this machine lacks.
LINTS = {
    "docker": "a Docker engine",
    "kubernetes": "a Kubernetes cluster",
    "provider-api": "a provider's API and a public HTTPS URL",
    "browser": "Chromium and a display (the browser test makes the screenshots)",
    "collector": "an OpenTelemetry Collector (test_tracing.py posts to a stand-in one)",
}
CODE = {"sh", "yaml", "python", "json"}
ALL = blocks()


def test_every_code_block_says_what_happens_to_it() -> None:
    problems = []
    previous: Block | None = None
    for block in ALL:
        marks = set(block.marks)
        if block.lang == "text":
            if marks:
                problems.append(f"{block.where}: a text block takes no marks")
        elif block.lang not in CODE:
            problems.append(f"{block.where}: ```{block.lang}: say sh, yaml, python, json or text")
        elif len(marks & {"run", "lint", "output"}) != 1 or marks - {"run", "lint", "output"}:
            problems.append(
                f"{block.where}: mark it run=<test>, lint=<reason> or output, not "
                f"{marks or 'nothing'}"
            )
        elif "run" in marks and block.marks["run"] not in RUNS:
            problems.append(f"{block.where}: no test claims run={block.marks['run']}")
        elif "lint" in marks and block.marks["lint"] not in LINTS:
            problems.append(f"{block.where}: lint={block.marks['lint']} is not a known reason")
        elif "output" in marks and (previous is None or previous.page != block.page):
            problems.append(f"{block.where}: an output block follows the block that prints it")
        previous = block
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_each_claimed_name_is_run_by_its_test(name: str) -> None:
    executed(name)
    assert f'executed("{name}")' in (ROOT / RUNS[name]).read_text()


@pytest.mark.parametrize(
    "block", [b for b in ALL if b.lang in CODE], ids=[b.where for b in ALL if b.lang in CODE]
)
def test_every_block_parses(block: Block) -> None:
    """The lint every block gets, run or not: the shell's syntax and every ``relay``
    command line through relay's own argument parser, YAML, Python and JSON parsed."""
    if block.lang == "sh":
        checked = subprocess.run(
            ["bash", "-n"], input=block.text, capture_output=True, text=True, check=False
        )
        assert checked.returncode == 0, checked.stderr
        for command in commands(block):
            for argv in relay_argv(command.text):
                try:
                    build_parser().parse_args(argv)
                except SystemExit:
                    pytest.fail(f"{block.where}: relay refuses {argv}")
    elif block.lang == "yaml":
        list(yaml.safe_load_all(block.text))
    elif block.lang == "python":
        compile(block.text, block.where, "exec")
    else:
        json.loads(block.text)


def test_the_readme_test_command_is_what_ci_runs() -> None:
    [command] = commands(executed("ci")[0])
    assert command.text in (ROOT / ".ci" / "run").read_text().splitlines()


# -- docs/events.md: every example is relay normalize's output ---------------------------------


def _normalize(argv: list[str], capsys: pytest.CaptureFixture[bytes]) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(argv) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def _recent(value: str) -> bool:
    """A ``time`` relay stamped because the body has none: the moment the test ran."""
    stamped = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return abs(time.time() - stamped.timestamp()) < 600


EVENTS = executed("events")


@pytest.mark.parametrize("block", EVENTS, ids=[b.where for b in EVENTS])
def test_an_events_example_is_what_normalize_prints(
    block: Block, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    [command] = commands(block)
    [argv] = relay_argv(command.text)
    assert command.text.endswith("| python -m json.tool --no-ensure-ascii"), command.text
    [printed] = _normalize(argv, capsysbinary)
    shown_block = ALL[ALL.index(block) + 1]
    assert shown_block.marks == {"output": ""}, shown_block.where
    shown = json.loads(shown_block.text)
    if printed["time"] != shown["time"] and _recent(printed["time"]):
        printed["time"] = shown["time"]
    assert printed == shown, shown_block.where


def test_one_events_example_runs_through_the_shell_as_written() -> None:
    """The others run in-process; this one proves the pipeline itself works."""
    block = EVENTS[0]
    [command] = commands(block)
    done = run(command.text, env=shell_env())
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == json.loads(ALL[ALL.index(block) + 1].text)


def _fixture_named(text: str) -> Path:
    """The last fixture file a paragraph names: ``chatwoot/x.json``, or a PlugChat
    ``receiveMessage`` one by its bare name."""
    names = re.findall(r"`([\w/]+\.json)`", text)
    assert names, f"no fixture named in {text[-300:]!r}"
    name = names[-1]
    candidates = [FIXTURES / name] if "/" in name else list(FIXTURES.glob(f"*/*/{name}"))
    candidates = [c for c in candidates if c.exists()]
    assert len(candidates) == 1, (name, candidates)
    return candidates[0]


def _within(shown: object, printed: object, path: str = "data") -> None:
    """Everything a trimmed example shows is in the event, with the same value."""
    if isinstance(shown, dict):
        assert isinstance(printed, dict), path
        for key, value in shown.items():
            assert key in printed, f"{path}.{key} is not in the event"
            _within(value, printed[key], f"{path}.{key}")
    elif isinstance(shown, list):
        assert isinstance(printed, list) and len(printed) == len(shown), path
        for i, (a, b) in enumerate(zip(shown, printed, strict=True)):
            _within(a, b, f"{path}[{i}]")
    else:
        assert shown == printed, f"{path}: the page shows {shown!r}, relay prints {printed!r}"


TRIMMED = [
    b
    for i, b in enumerate(ALL)
    if b.page.name == "events.md"
    and "output" in b.marks
    and ALL[i - 1].marks.get("run") != "events"
]


@pytest.mark.parametrize("block", TRIMMED, ids=[b.where for b in TRIMMED])
def test_a_trimmed_events_example_is_part_of_what_normalize_prints(
    block: Block, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    lines = block.page.read_text().splitlines()
    before = ALL[ALL.index(block) - 1]
    start = before.line + before.text.count("\n") + 1 if before.page == block.page else 0
    fixture = _fixture_named("\n".join(lines[start : block.line - 1]))
    provider = fixture.relative_to(FIXTURES).parts[0]
    argv = ["normalize", str(fixture), "--provider", provider]
    if provider == "plugchat":
        argv += ["--kind", fixture.parent.name, "--source", "plugchat"]
    else:
        argv += ["--source", "nexloo"]
    [printed] = _normalize(argv, capsysbinary)
    shown = json.loads(block.text)
    # an example shows part of the event's message, or of its attributes and data
    data = printed["data"]
    scopes = {"data.message": data["message"], "event": data | printed}
    name, scope = next(
        ((n, s) for n, s in scopes.items() if shown.keys() <= s.keys()), ("data", {})
    )
    _within(shown, scope, name)


# -- docs/consuming.md ---------------------------------------------------------------------------


def test_relay_schema_writes_the_documented_schema(tmp_path: Path) -> None:
    [block] = executed("contracts")
    [command] = commands(block)
    done = run(command.text, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    schema = json.loads((tmp_path / "relay-event.schema.json").read_text())
    documented = re.search(
        r"`dataschema` every event carries \(`([^`]+)`\)", block.page.read_text()
    )
    assert documented is not None
    assert schema["$id"] == documented.group(1)
    assert "EventData" in schema["$defs"]


def test_the_python_api_example_prints_what_its_comment_says(
    capsys: pytest.CaptureFixture[str],
) -> None:
    [block] = executed("python-api")
    [said] = re.findall(r"print\(.*\)\s+# (.*)$", block.text, re.MULTILINE)
    body = (FIXTURES / "plugchat/receiveMessage/order_cart.json").read_bytes()
    exec(compile(block.text, block.where, "exec"), {"body": body})
    assert capsys.readouterr().out == said + "\n"


# -- docs/delivery.md ---------------------------------------------------------------------------


def test_the_verification_example_accepts_relays_signature_and_nothing_else() -> None:
    [block] = executed("signature")
    [secret] = re.findall(r'Webhook\("(whsec_[^"]+)"\)', block.text)
    example = (ROOT / "config" / "relay.example.yaml").read_text()
    assert secret in example, "the page's secret is the example subscriber's"
    processed: list[dict[str, Any]] = []
    seen: set[str] = set()
    namespace: dict[str, Any] = {
        "already_processed": lambda event_id: event_id in seen or seen.add(event_id),
        "process": processed.append,
    }
    exec(compile(block.text, block.where, "exec"), namespace)
    handle = namespace["handle"]

    body = b'{"specversion":"1.0","id":"03fad111-89b8-5523-84d4-b7d2ce2c67bc"}'
    headers = signing.headers([webhook_secret(secret)], "evt-1", int(time.time()), body)
    assert handle(body, headers) == 204
    assert processed == [json.loads(body)]
    assert handle(body, headers) == 204  # a repeat: dropped by id
    assert len(processed) == 1
    assert handle(body.replace(b"1.0", b"1.1"), headers) == 401
    stale = signing.headers([webhook_secret(secret)], "evt-2", int(time.time()) - 3600, body)
    assert handle(body, stale) == 401


# -- docs/kafka.md --------------------------------------------------------------------------------


KAFKA_SECURITY = executed("kafka-security")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.mark.parametrize("block", KAFKA_SECURITY, ids=[b.where for b in KAFKA_SECURITY])
def test_a_kafka_security_example_passes_relay_check(
    block: Block, tmp_path: Path, pki: Pki
) -> None:
    """With the files it names made (a CA, a client certificate and key) and its
    variables set, the way an operator would have them."""
    text = block.text
    for name, made in {
        "/etc/relay/kafka-ca.pem": pki.ca,
        "/etc/relay/kafka-client.pem": pki.client_cert,
        "/etc/relay/kafka-client.key": pki.client_key,
    }.items():
        text = text.replace(name, str(made))
    config = tmp_path / "relay.yaml"
    config.write_text(f"data_dir: {tmp_path / 'var'}\n" + text)
    names = set(re.findall(r"\$\{(\w+)\}", text))
    env = shell_env(
        **{name: "pkc-1.example.com:9092" if "BOOTSTRAP" in name else "x" for name in names}
    )
    done = Shell(env=env).ok(f"relay check --config {config}")
    protocol = re.search(r"security_protocol: (\w+)", text)
    assert protocol is not None and protocol.group(1) in done.stdout


# -- docs/operations.md ---------------------------------------------------------------------------


def test_the_attempt_record_example_is_an_attempt_relay_writes() -> None:
    [block] = executed("attempt-record")
    attempt = decode_attempt(block.text.encode())
    assert json.loads(block.text).keys() == msgspec.to_builtins(attempt).keys()


# -- what cannot run is linted: the files it names exist ------------------------------------------

_REPO_PATH = re.compile(r"(?<![\w./-])((?:deploy|config|tests|docs|bench|relay)/[\w./-]*[\w/])")


@pytest.mark.parametrize(
    "block",
    [b for b in ALL if "lint" in b.marks],
    ids=[b.where for b in ALL if "lint" in b.marks],
)
def test_a_linted_block_names_files_that_exist(block: Block) -> None:
    named = _REPO_PATH.findall(block.text)
    missing = [path for path in named if not (ROOT / path).exists()]
    assert not missing, f"{block.where} names {missing}"


def _architecture_tree() -> tuple[list[str], list[Path], list[str]]:
    """What the tree names that is not there, every path it names, and its lines that name
    more than one module."""
    [tree] = [
        b
        for b in ALL
        if b.page == ROOT / "README.md" and b.lang == "text" and b.text.startswith("relay/\n")
    ]
    parents: list[Path] = []
    missing, named, crowded = [], [], []
    for line in tree.text.splitlines():
        depth = (len(line) - len(line.lstrip())) // 2
        names = []
        for word in line.split():
            if not re.fullmatch(r"[\w./-]+(\.py|\.md|/)", word):
                break
            names.append(word)
        del parents[depth:]
        base = parents[-1] if parents else ROOT
        if sum(name.endswith(".py") for name in names) > 1:
            crowded.append(line.strip())
        for name in names:
            named.append(base / name)
            if not (base / name).exists():
                missing.append(str((base / name).relative_to(ROOT)))
        if len(names) == 1 and names[0].endswith("/"):
            parents.append(base / names[0])
    return missing, named, crowded


def test_the_architecture_tree_names_the_modules_there_are() -> None:
    """The README's tree (its Architecture section): every file and package it lists exists."""
    missing, _, _ = _architecture_tree()
    assert not missing, missing


def test_the_architecture_tree_has_a_line_for_every_module() -> None:
    """Every module of relay/ has its line (a package's own line stands for its
    ``__init__.py``), and a line names one module."""
    _, named, crowded = _architecture_tree()
    assert not crowded, f"one module a line: {crowded}"
    listed = {path.resolve() for path in named}
    modules = [
        path
        for path in (ROOT / "relay").rglob("*.py")
        if path.name != "__init__.py" or path.parent.resolve() not in listed
    ]
    unlisted = [str(path.relative_to(ROOT)) for path in modules if path.resolve() not in listed]
    assert not unlisted, f"README.md's tree has no line for {unlisted}"


# -- docs/commands.md: the refusals it shows are relay's words ------------------------------------

_MISTAKES = {
    "routes[1].topic": "routes:\n  - {name: a, topic: x}\n  - {name: b, topic: 5}\n",
    "tokens[0]": "sources:\n  nexloo: {provider: chatwoot, tokens: ['${NEXLOO_TOKEN}']}\n",
    "timeout": "subscribers:\n  - {name: crm, url: 'http://127.0.0.1:9/', timeout: 10 sec}\n",
    # with the data_dir line first, the two keys are on lines 12 and 40
    "duplicate key": "\n" * 10 + "subscribers: []\n" + "\n" * 27 + "subscribers: []\n",
}


def test_the_configuration_mistakes_shown_are_what_relay_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = next(b for b in ALL if b.page.name == "commands.md" and b.lang == "text")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEXLOO_TOKEN", raising=False)
    printed = []
    for text in _MISTAKES.values():
        Path("relay.yaml").write_text(f"data_dir: {tmp_path / 'var'}\n" + text)
        assert main(["check", "--config", "relay.yaml"]) == 1
        printed.append(capsys.readouterr().err)
    assert "".join(printed) == shown.text


def test_the_machine_refusals_shown_are_what_relay_prints(tmp_path: Path) -> None:
    [shown] = [
        b.text.splitlines()
        for b in ALL
        if b.page.name == "commands.md" and b.lang == "text" and "data_dir:" in b.text
    ]
    afile = tmp_path / "afile"
    afile.write_text("")
    config = make_config(f"data_dir: {afile / 'var'}\n")
    [problem] = preflight.data_dir(config)
    assert f"relay: {problem}".replace(str(tmp_path), "/srv") in shown
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        problem = preflight.check_listen("127.0.0.1", port)
    assert f"relay: {problem}".replace(str(port), "8080") in shown
    problem = preflight.check_listen("10.9.9.9", 8080)
    assert f"relay: {problem}" in shown


def _option_names(parser: argparse.ArgumentParser) -> set[str]:
    """A parser's options, and those of its own subcommands (``register plugchat``)."""
    names = set()
    for action in parser._actions:
        names |= set(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                names |= _option_names(sub)
    return names


def _options() -> dict[str, set[str]]:
    """Each subcommand's option names, from relay's own parser."""
    parser = build_parser()
    [subcommands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {name: _option_names(sub) for name, sub in subcommands.choices.items()}


def test_every_option_the_prose_names_exists() -> None:
    """Inline ``relay <command> --option …`` in the text: each option is one relay has."""
    options = _options()
    unknown = []
    for page in PAGES:
        prose = re.sub(r"^\s*```.*?^\s*```", "", page.read_text(), flags=re.S | re.M)
        for span in re.findall(r"`(?:\.venv/bin/)?relay (\w+)([^`]*)`", prose):
            command, rest = span
            if command not in options:
                continue
            for option in re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", rest):
                if option not in options[command]:
                    unknown.append(f"{page.name}: relay {command} {option}")
    assert not unknown, unknown


# snake_case names of other software the docs mention (an OpenTelemetry Collector processor)
_OTHER_SOFTWARE = {"tail_sampling"}


def test_every_name_the_prose_gives_is_one_relay_uses() -> None:
    """A log event, reason, metric or key the text names in backticks (``snake_case``)
    is spelled somewhere in relay's code: a renamed log line or reason cannot leave the
    docs behind. Metrics gain ``_total`` and binary-mode headers ``ce_`` on the way out."""
    code = "\n".join(
        path.read_text() for path in (ROOT / "relay").rglob("*") if path.suffix in {".py", ".html"}
    )
    code += "\n".join(DELIVERY_REASONS)  # delivery_<failure>, built from DeliveryFailure
    unknown = []
    for page in PAGES:
        prose = re.sub(r"^\s*```.*?^\s*```", "", page.read_text(), flags=re.S | re.M)
        for name in set(re.findall(r"`([a-z][a-z0-9]*(?:_[a-z0-9]+)+)`", prose)):
            spelled = name.removesuffix("_total").removeprefix("ce_")
            if spelled not in code and name not in _OTHER_SOFTWARE:
                unknown.append(f"{page.name}: {name}")
    assert not unknown, sorted(unknown)


def _struct_fields(kind: object) -> dict[str, object] | None:
    """A msgspec Struct type's fields by their YAML name (through ``X | None``)."""
    if isinstance(kind, msgspec.inspect.UnionType):
        kind = next(t for t in kind.types if not isinstance(t, msgspec.inspect.NoneType))
    if isinstance(kind, msgspec.inspect.StructType):
        return {field.encode_name: field.type for field in kind.fields}
    return None


def test_every_configuration_key_the_prose_names_exists() -> None:
    """A dotted key in backticks that starts with a section of the configuration
    (``limits.header_timeout``, ``kafka.spool_max_bytes``; a subscriber's
    ``retry.max_attempts``, ``circuit_breaker.window``) is a key relay accepts."""
    roots = [msgspec.inspect.type_info(t) for t in (Config, Subscriber)]
    unknown = []
    for page in PAGES:
        prose = re.sub(r"^\s*```.*?^\s*```", "", page.read_text(), flags=re.S | re.M)
        for path in set(re.findall(r"`([a-z_]+(?:\.[a-z_]+)+)`", prose)):
            if re.search(r"\.(py|md|ya?ml|json|txt)$", path):
                continue  # a file
            first, *rest = path.split(".")
            for root in roots:
                kind = (_struct_fields(root) or {}).get(first)
                if kind is None or _struct_fields(kind) is None:
                    continue  # not a section of this root (a file name, an event path)
                for part in rest:
                    kind = (_struct_fields(kind) or {}).get(part)
                if kind is None:
                    unknown.append(f"{page.name}: {path}")
    assert not unknown, sorted(unknown)


def _undocumented(
    kind: object, prefix: str, documented: set[str], skip: tuple[str, ...] = ()
) -> list[str]:
    found = []
    for name, field in (_struct_fields(kind) or {}).items():
        key = prefix + name
        if name in skip or key in documented:
            continue
        if _struct_fields(field) is not None:  # a section: documented whole or key by key
            found += _undocumented(field, key + ".", documented)
        else:
            found.append(key)
    return found


def test_every_configuration_key_is_in_the_reference() -> None:
    """docs/configuration.md's tables name every key relay accepts: a new key comes with
    its row (first column, in backticks: ``data_dir``, ``limits.max_body_bytes``, a
    ``kafka`` table's ``linger_ms``, a subscriber's ``retry.max_attempts``)."""
    documented = set()
    for line in (ROOT / "docs" / "configuration.md").read_text().splitlines():
        if line.startswith("| `"):
            documented |= set(re.findall(r"`([^`]+)`", line.split("|")[1]))
    info = msgspec.inspect.type_info
    lists = ("kafka", "sources", "topics", "routes", "subscribers")
    missing = _undocumented(info(Config), "", documented, skip=lists)
    for section, kind in zip(lists, (Kafka, Source, Topics, Route, Subscriber), strict=True):
        missing += [f"{section}: {key}" for key in _undocumented(info(kind), "", documented)]
    assert not missing, f"not in docs/configuration.md's tables: {missing}"


def test_every_metric_relay_exports_is_in_the_metrics_table() -> None:
    for module in pkgutil.walk_packages(relay.__path__, "relay."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)  # each module registers its own metrics
    table = (ROOT / "docs" / "operations.md").read_text()
    missing = []
    for metric in REGISTRY.collect():
        if metric.name.startswith("relay_"):
            shown = metric.name + "_total" if metric.type == "counter" else metric.name
            if f"\n| `{shown}` |" not in table:
                missing.append(shown)
    assert not missing, f"not in docs/operations.md's Metrics table: {missing}"


def _long_options(parser: argparse.ArgumentParser, name: str) -> list[tuple[str, str]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                found += _long_options(sub, f"{name} {sub_name}")
        found += [(name, o) for o in action.option_strings if o.startswith("--") and o != "--help"]
    return found


def test_every_option_of_every_command_is_documented() -> None:
    pages = "\n".join(page.read_text() for page in PAGES)
    options = _long_options(build_parser(), "relay")
    missing = [f"{name} {option}" for name, option in options if option not in pages]
    assert not missing, f"no page mentions {missing}"


_REPO_DIRS = r"(?:relay|deploy|tests|config|bench|docs|\.ci)"
# relay.<x> names in the prose that are topics or files, not Python
_NOT_PYTHON = {"relay.yaml", "relay.raw", "relay.deadletter", "relay.attempts"}


def _python(dotted: str) -> bool:
    """``relay.<x>…`` names Python when ``relay.<x>`` is a module or name of the package;
    otherwise it is a topic, a file or a span attribute (``relay.event_count``)."""
    first = dotted.split(".")[1]
    return hasattr(relay, first) or importlib.util.find_spec(f"relay.{first}") is not None


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attr in parts[split:]:
            if not hasattr(found, attr):
                return False
            found = getattr(found, attr)
        return True
    return False


def test_every_module_and_file_the_prose_names_exists() -> None:
    """``relay.bus.security.client_options`` and ``deploy/kubernetes/ingress.yaml`` in the
    text are a Python name relay has and a file of the repository: a move leaves no
    stale pointer."""
    stale = []
    for page in PAGES:
        prose = re.sub(r"^\s*```.*?^\s*```", "", page.read_text(), flags=re.S | re.M)
        for name in set(re.findall(r"`(relay(?:\.\w+)+)`", prose)) - _NOT_PYTHON:
            if _python(name) and not _resolves(name):
                stale.append(f"{page.name}: {name}")
        for path in set(
            re.findall(r"`((?:relay|deploy|tests|config|bench|docs|\.ci)/[\w./*-]*)`", prose)
        ):
            if not path.endswith(".env") and not list(ROOT.glob(path.rstrip("/"))):
                stale.append(f"{page.name}: {path}")
    assert not stale, sorted(stale)


def test_every_dead_letter_reason_is_explained() -> None:
    """docs/topics.md names each ``relay-reason`` relay writes, ingest's and delivery's."""
    page = (ROOT / "docs" / "topics.md").read_text()
    missing = [r for r in (*INGEST_REASONS, *DELIVERY_REASONS) if f"`{r}`" not in page]
    assert not missing, f"docs/topics.md does not explain {missing}"
