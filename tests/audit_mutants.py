"""The mutation audit's survivors (shared/reviews/mutation-audit.md), re-applied to the
current code one at a time: each mutant's text edit, then the tests that must fail on it,
then the file restored (tests/README.md, "Promises and the tests that break when they do").

    .venv/bin/python -m tests.audit_mutants          # all of them, about a minute
    .venv/bin/python -m tests.audit_mutants M09a M27 # some

Prints ``KILLED`` or ``SURVIVED`` a mutant and exits 1 if any survived. An edit that no
longer matches the code exactly once stops the run: the mutant must be rewritten for the
code, not skipped. Not in CI (it edits files of the checkout while it runs).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

Mutant = tuple[str, str, str, str, list[str]]
"""Name, file, the text replaced (exactly once), its replacement, the pytest arguments."""

MUTANTS: list[Mutant] = [
    (
        "M03",
        "relay/delivery/worker.py",
        "        queue = self._queues.get(key)\n        if queue is None:",
        "        queue = None  # M03: two lanes a key\n        if queue is None:",
        ["tests/integration/test_delivery_promises.py", "-k", "one_in_flight_per_key"],
    ),
    (
        "M05",
        "relay/config/model.py",
        "return [s for s in ([self.secret] if self.secret else []) + list(self.secrets) if s]",
        "return [s for s in ([self.secret] if self.secret else list(self.secrets)) if s]",
        ["tests/integration/test_delivery_promises.py", "-k", "every_configured_secret_signs"],
    ),
    (
        "M09a",
        "relay/bus/embedded/log.py",
        'conn.execute("PRAGMA synchronous=FULL")',
        'conn.execute("PRAGMA synchronous=OFF")',
        ["tests/unit/bus/embedded/test_log.py"],
    ),
    (
        "M09b",
        "relay/sqlite.py",
        'synchronous: ClassVar[Literal["FULL", "NORMAL"]] = "FULL"',
        'synchronous: ClassVar[Literal["FULL", "NORMAL"]] = "OFF"  # type: ignore',
        [
            "tests/unit/bus/test_spool.py",
            "tests/unit/bus/embedded/test_log.py",
            "tests/unit/delivery/test_state.py",
        ],
    ),
    (
        "M10",
        "relay/bus/spool.py",
        "headers=r.headers) for r in stored\n        ]",
        "headers=r.headers) for r in stored\n        ][::-1]",
        ["tests/unit/bus/test_spool.py", "-k", "oldest_first"],
    ),
    (
        "M12",
        "relay/pipeline.py",
        'records.append(self._deadletter(inbound, metadata, "malformed_json", str(exc)))',
        'records = [self._deadletter(inbound, metadata, "malformed_json", str(exc))]',
        ["tests/integration/test_ingress_http.py", "-k", "malformed_body_is_400_and_kept"],
    ),
    (
        "M14",
        "relay/providers/chatwoot/signature.py",
        'if not hmac.compare_digest(given.lower().encode("utf-8", "surrogateescape"), expected',
        'if not (lambda a, b: a == b)(given.lower().encode("utf-8", "surrogateescape"), expected',
        ["tests/unit/providers/chatwoot/test_signature.py"],
    ),
    (
        "M23",
        "relay/ratelimit.py",
        "        if self._tokens >= 1:",
        "        if self._tokens >= 0:",
        ["tests/integration/test_ingress_http.py", "-k", "rate_limit_is_429"],
    ),
    (
        "M24",
        "relay/ratelimit.py",
        "self.capacity = burst if burst is not None else max(1.0, rate)",
        "self.capacity = burst if burst is not None else max(1.0, 2 * rate)",
        ["tests/integration/test_ingress_http.py", "-k", "rate_limit_is_429"],
    ),
    (
        "M27",
        "relay/delivery/worker.py",
        "        return self._backlog + self.buffered",
        "        return self.buffered",
        ["tests/integration/test_delivery_promises.py", "-k", "lag_grows"],
    ),
]


def check(mutant: Mutant) -> bool:
    """Whether the mutant's tests fail on it (it is killed)."""
    name, path, old, new, tests = mutant
    file = ROOT / path
    original = file.read_text()
    if original.count(old) != 1:
        raise SystemExit(f"{name}: its edit no longer matches {path} exactly once")
    file.write_text(original.replace(old, new))
    try:
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-n0", *tests]
        run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    finally:
        file.write_text(original)
    lines = run.stdout.strip().splitlines()
    killed = run.returncode != 0
    last = lines[-1] if lines else run.stderr[-200:]
    print(f"{name}: {'KILLED' if killed else 'SURVIVED'} ({last})")
    return killed


def main(names: list[str]) -> int:
    chosen = [m for m in MUTANTS if not names or m[0] in names]
    survived = [m[0] for m in chosen if not check(m)]
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
