"""The import graph of relay/: no cycles (imports inside functions and for types only
count), no package imports one above it (the table in
``test_lower_layers_do_not_import_upper_ones``), no module (nor any of bench/) is over 400
lines; and the unit tests' files mirror it."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import relay

PACKAGE = Path(relay.__file__).parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


@cache
def _graph() -> dict[str, set[str]]:
    """module → the relay modules it imports anywhere in its text; ``from pkg import sub``
    is an edge to the submodule (the package's own __init__ importing it is not a cycle)."""
    modules = _modules()

    def owner(name: str) -> str | None:
        while name not in modules and "." in name:
            name = name.rsplit(".", 1)[0]
        return name if name in modules else None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                subs = [f"{node.module}.{a.name}" for a in node.names]
                subs = [sub for sub in subs if sub in modules]
                targets = subs if len(subs) == len(node.names) else [node.module, *subs]
            for target in targets:
                found = owner(target) if target.startswith("relay") else None
                if found is not None and found != name:
                    graph[name].add(found)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected parts of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            part = [stack.pop()]
            while part[-1] != node:
                part.append(stack.pop())
            if len(part) > 1:
                cycles.append(sorted(part))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def test_no_import_cycles() -> None:
    graph = _graph()
    assert len(graph) > 50 and graph["relay.app"]  # the scan found the package
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _imports_under(graph: dict[str, set[str]], package: str) -> set[str]:
    return {t for m, ts in graph.items() if m == package or m.startswith(package + ".") for t in ts}


ABOVE = ("relay.app", "relay.cli", "relay.contracts", "relay.console", "relay.admin")
"""The composition root, the commands, the published documents and the admin side."""
SIDES = ("relay.ingress", "relay.delivery", "relay.index", "relay.pipeline")
"""The three things a process runs, and the pipeline behind ingress."""
MODEL = (*ABOVE, *SIDES, "relay.providers", "relay.config", "relay.register")


def test_lower_layers_do_not_import_upper_ones() -> None:
    graph = _graph()
    for package, forbidden in [
        ("relay.admin", ("relay.app", "relay.cli", "relay.contracts", "relay.console")),
        ("relay.console", ("relay.app", "relay.cli", "relay.contracts")),
        ("relay.ingress", (*ABOVE, "relay.delivery", "relay.index")),
        ("relay.delivery", (*ABOVE, "relay.ingress", "relay.index", "relay.pipeline")),
        ("relay.index", (*ABOVE, "relay.ingress", "relay.delivery", "relay.pipeline")),
        ("relay.pipeline", (*ABOVE, "relay.ingress", "relay.delivery", "relay.index")),
        ("relay.telemetry", (*ABOVE, "relay.ingress", "relay.index", "relay.pipeline")),
        ("relay.attempts", (*ABOVE, *SIDES)),
        ("relay.register", (*ABOVE, *SIDES, "relay.bus")),
        ("relay.config", (*ABOVE, *SIDES, "relay.bus", "relay.register")),
        ("relay.providers", (*ABOVE, *SIDES, "relay.register", "relay.config")),
        ("relay.routing", (*ABOVE, *SIDES, "relay.bus")),
        ("relay.live", (*ABOVE, *SIDES, "relay.bus")),
        ("relay.bus", (*ABOVE, *SIDES)),
        ("relay.deadletters", MODEL),
        ("relay.cloudevents", (*MODEL, "relay.bus")),
        ("relay.events", (*MODEL, "relay.bus")),
        ("relay.parts", (*MODEL, "relay.bus")),
    ]:
        wrong = {
            t
            for t in _imports_under(graph, package)
            if any(t == f or t.startswith(f + ".") for f in forbidden)
        }
        assert not wrong, f"{package} imports {sorted(wrong)}"


MAX_LINES = 400


def _too_long(paths: list[Path]) -> dict[str, int]:
    """The files over MAX_LINES lines (every line counts: docstrings, comments, blanks)."""
    counts = {path.as_posix(): len(path.read_text().splitlines()) for path in paths}
    return {name: count for name, count in counts.items() if count > MAX_LINES}


def test_no_module_is_over_400_lines() -> None:
    modules = list(_modules().values())
    assert len(modules) > 50  # the scan found the package
    assert _too_long(modules) == {}


def test_no_bench_module_is_over_400_lines() -> None:
    modules = sorted((PACKAGE.parent / "bench").glob("*.py"))
    assert len(modules) > 5  # the scan found bench/
    assert _too_long(modules) == {}


def test_the_size_check_finds_a_long_file(tmp_path: Path) -> None:
    short, long = tmp_path / "short.py", tmp_path / "long.py"
    short.write_text("x = 1\n" * MAX_LINES)
    long.write_text("x = 1\n" * (MAX_LINES + 1))
    assert _too_long([short, long]) == {long.as_posix(): MAX_LINES + 1}


NAMED_APART = {
    "contracts/test_tables.py": "the contract against the code's tables (errors, reasons, routes)",
    "providers/test_fastpath.py": "every provider's fast path against its tolerant path",
    "providers/test_fast_readers.py": "relay/providers/fast.py's readers, one by one",
    "providers/test_fuzz.py": "property tests across providers",
    "providers/test_linear.py": "property tests across providers",
    "test_docs_examples.py": "the fenced blocks of README.md and docs/",
    "test_readme_links.py": "the links of README.md and docs/",
    "test_layers.py": "the package's import graph and the tests' layout",
}
"""Unit test files not named after one module, and what they test."""


def test_unit_tests_mirror_the_package() -> None:
    """``tests/unit/<path>/test_<name>.py`` tests ``relay/<path>/<name>.py`` or the package
    ``relay/<path>/<name>/`` (tests/README.md, Layout)."""
    unit = Path(__file__).parent
    modules = {path.relative_to(PACKAGE).with_suffix("") for path in PACKAGE.rglob("*.py")}
    astray = []
    for test in unit.rglob("test_*.py"):
        relative = test.relative_to(unit)
        tested = relative.parent / relative.stem.removeprefix("test_")
        if tested not in modules and tested / "__init__" not in modules:
            astray.append(relative.as_posix())
    assert sorted(astray) == sorted(NAMED_APART)
