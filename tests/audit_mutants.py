"""The mutation audit's survivors (shared/reviews/mutation-audit.md), re-applied to the
current code one at a time: each mutant's text edit, then the tests that must fail on it,
then the file restored (tests/README.md, "Promises and the tests that break when they do").

    .venv/bin/python -m tests.audit_mutants          # all of them, about a minute
    .venv/bin/python -m tests.audit_mutants M09a M27 # some

Prints ``KILLED`` or ``SURVIVED`` a mutant and exits 1 if any survived; a pytest run that
ends without a verdict (no test selected, a collection error) stops the audit. An edit that no
longer matches the code exactly once stops the run: the mutant must be rewritten for the
code, not skipped. Not in CI (it edits files of the checkout while it runs).
"""

from __future__ import annotations

import os
import signal
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


TESTS_FAILED = 1
"""pytest's exit code when tests ran and some failed: the only answer that kills a mutant
(2 interrupted or a collection error, 4 a usage error, 5 no test selected: the audit is
broken, not the mutant killed)."""


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(f"stopped by signal {signum}")  # so the restoring ``finally`` runs


def check(mutant: Mutant) -> bool:
    """Whether the mutant's tests fail on it (it is killed)."""
    name, path, old, new, tests = mutant
    file = ROOT / path
    original = file.read_bytes()
    if original.count(old.encode()) != 1:
        raise SystemExit(f"{name}: its edit no longer matches {path} exactly once")
    file.write_bytes(original.replace(old.encode(), new.encode()))
    try:
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-n0", *tests]
        # no .pyc written: an edit of the same length within a second could leave one that
        # matches the restored file's size and time
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        run = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=900, env=env
        )
    finally:
        file.write_bytes(original)
    lines = run.stdout.strip().splitlines()
    last = lines[-1] if lines else run.stderr[-200:]
    if run.returncode not in (0, TESTS_FAILED):
        raise SystemExit(f"{name}: pytest exited {run.returncode}, not a verdict ({last})")
    killed = run.returncode == TESTS_FAILED
    print(f"{name}: {'KILLED' if killed else 'SURVIVED'} ({last})", flush=True)
    return killed


def main(names: list[str]) -> int:
    unknown = set(names) - {m[0] for m in MUTANTS}
    if unknown:
        raise SystemExit(f"no such mutant: {', '.join(sorted(unknown))}")
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGHUP, _stop)
    chosen = [m for m in MUTANTS if not names or m[0] in names]
    survived = [m[0] for m in chosen if not check(m)]
    print(f"survived: {', '.join(survived)}" if survived else f"all {len(chosen)} killed")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
