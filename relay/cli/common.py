"""What every subcommand shares: one-line refusals, loading the configuration, tables."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from relay.config import Config, ConfigError, load


def fail(message: str, code: int = 1) -> int:
    print(f"relay: {message}", file=sys.stderr)
    return code


def load_config(args: argparse.Namespace) -> Config:
    path = args.config or os.environ.get("RELAY_CONFIG")
    if not path:
        raise ConfigError("no configuration: pass --config PATH or set RELAY_CONFIG")
    return load(path)


def refuse(problems: Sequence[str]) -> int:
    for problem in problems:
        print(f"relay: {problem}", file=sys.stderr)
    return 1


def print_table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print(("  " + "  ".join(cells)).rstrip())
