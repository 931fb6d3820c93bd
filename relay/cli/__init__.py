"""``relay``: serve, check, normalize, tail, replay, schema, asyncapi, register."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from relay import __version__
from relay.cli.check import cmd_check
from relay.cli.common import fail
from relay.cli.serve import cmd_serve, parse_workers
from relay.cli.tools import (
    cmd_asyncapi,
    cmd_normalize,
    cmd_register,
    cmd_replay,
    cmd_schema,
    cmd_tail,
    tail_options,
)
from relay.config import ConfigError
from relay.providers import PROVIDERS
from relay.providers.base import Provider

__all__ = ["build_parser", "main", "tail_options"]


class Opt(NamedTuple):
    """One ``add_argument`` call: its flags (or positional name) and its keywords."""

    flags: tuple[str, ...]
    kwargs: dict[str, Any]


def opt(*flags: str, **kwargs: Any) -> Opt:
    return Opt(flags, kwargs)


class OneOf(NamedTuple):
    """Options that exclude each other (an argparse mutually exclusive group)."""

    options: tuple[Opt, ...]


class Command(NamedTuple):
    name: str
    func: Callable[[argparse.Namespace], int]
    help: str
    description: str | None = None
    epilog: str | None = None
    config: bool = True
    """Takes ``--config/-c`` (first, before its own options)."""
    options: tuple[Opt | OneOf, ...] = ()


CONFIG = opt("--config", "-c", help="YAML configuration (default: $RELAY_CONFIG)")

COMMANDS = (
    Command(
        "serve",
        cmd_serve,
        "run the webhook gateway",
        "Run the webhook gateway. It checks what it needs first (optional libraries, "
        "data_dir, the listen addresses) and refuses in one line if any is missing.",
        options=(
            opt(
                "--role",
                choices=["all", "ingress", "delivery"],
                default="all",
                help="ingress: hooks only; delivery: subscribers only; all: both (default)",
            ),
            opt("--host", help="override listen.host"),
            opt("--port", type=int, help="override listen.port"),
            opt("--admin-port", type=int, help="override admin.listen.port"),
            opt(
                "--workers",
                type=parse_workers,
                help="override workers: processes sharing the port (auto: one per core); 1 is "
                "one process, no supervisor",
            ),
        ),
    ),
    Command(
        "check",
        cmd_check,
        "validate a configuration, print the routing table",
        "Validate a configuration the way serve does (values, optional libraries, data_dir), "
        "print the routing table, and warn about what cannot work (unreachable subscribers, "
        "globs that match no type, where paths no event has).",
        options=(
            opt("--connect", action="store_true", help="also connect to Kafka as serve would"),
            opt("--strict", action="store_true", help="exit 1 on warnings too"),
            opt(
                "--skip-local",
                action="store_true",
                help="skip what depends on this machine (optional libraries, data_dir): for a "
                "file meant for another one, e.g. in CI",
            ),
        ),
    ),
    Command(
        "normalize",
        cmd_normalize,
        "print the canonical events of a payload file as JSON lines",
        config=False,
        options=(
            opt("file", help="payload file, or - for standard input"),
            opt("--provider", required=True, choices=sorted(PROVIDERS)),
            opt("--kind", help="PlugChat kind (the URL part), e.g. finishAttendance"),
            opt("--source", help="source name to stamp on the events"),
        ),
    ),
    Command(
        "tail",
        cmd_tail,
        "print a topic's records (embedded log or Kafka)",
        "Print a topic's records, one per line: the value as stored, or with --headers a JSON "
        "object with topic, partition, offset, timestamp, key, headers and value. "
        "--deadletter shows why each record was dead-lettered.",
        options=(
            opt("--topic", help="topic (default: the events topic)"),
            OneOf(
                (
                    opt(
                        "--after",
                        type=int,
                        help="start after this offset (Kafka: in each partition)",
                    ),
                    opt(
                        "--last",
                        "-n",
                        type=int,
                        help="start N records before the end (Kafka: of each partition)",
                    ),
                )
            ),
            opt("--partition", type=int, help="read only this partition (Kafka)"),
            opt(
                "--limit",
                type=int,
                help="stop after this many records (default 1000; none with -f)",
            ),
            opt("--follow", "-f", action="store_true", help="keep waiting for new records"),
            opt(
                "--headers",
                action="store_true",
                help="JSON lines with offsets, partition and headers",
            ),
            opt(
                "--deadletter",
                action="store_true",
                help="the dead-letter topic, with origin (ingest/delivery), reason and error",
            ),
            opt("--subscriber", help="with --deadletter: only this subscriber's"),
        ),
    ),
    Command(
        "replay",
        cmd_replay,
        "redeliver events to one subscriber",
        "Redeliver a bounded range to one subscriber, without moving its live position.",
        "exit status: 0 when everything was delivered, 3 when some were dead-lettered "
        "again, 1 on an error",
        options=(
            opt("--subscriber", required=True, help="subscriber name"),
            OneOf(
                (
                    opt("--since", help="an RFC 3339 time, or a duration ago such as 2h"),
                    opt("--from-offset", type=int, help="topic offset to start from"),
                )
            ),
            opt(
                "--deadletter",
                action="store_true",
                help="re-send what was dead-lettered for it (all, or those since --since)",
            ),
        ),
    ),
    Command(
        "schema",
        cmd_schema,
        "print the canonical event's JSON Schema",
        "Print the canonical event's JSON Schema (draft 2020-12), generated from the event "
        "definition.",
        config=False,
    ),
    Command(
        "asyncapi",
        cmd_asyncapi,
        "print an AsyncAPI 3.0 document of the topics and HTTP endpoints",
        options=(opt("--format", choices=["yaml", "json"], default="yaml"),),
    ),
)


def register_command(provider: str, unit: Provider) -> Command:
    """``relay register <provider>``: one per provider with a registrar."""
    env = provider.upper()
    account = (opt("--account", required=True, help=f"{unit.title} account id"),)
    return Command(
        provider,
        cmd_register,
        f"register a {provider} source's webhooks",
        options=(
            opt("--source", required=True, help=f"the configured {provider} source"),
            opt("--public-url", required=True, help="where providers reach this relay"),
            *(account if unit.register_needs_account else ()),
            opt(
                "--api-url",
                help=f"{provider} API base, e.g. {unit.register_example_url} (${env}_API_URL)",
            ),
            opt(
                "--api-token",
                help=f"{provider} API token, or '$VAR' to read it from VAR "
                f"(default: ${env}_API_TOKEN); a literal token shows in ps",
            ),
            opt("--api-token-file", help=f"read the {provider} API token from this file"),
            opt(
                "--insecure",
                action="store_true",
                help="allow a plain http:// --api-url (the API token crosses the network in clear)",
            ),
        ),
    )


def _add(commands: Any, command: Command) -> None:
    parser = commands.add_parser(
        command.name, help=command.help, description=command.description, epilog=command.epilog
    )
    for option in ((CONFIG,) if command.config else ()) + command.options:
        if isinstance(option, OneOf):
            group = parser.add_mutually_exclusive_group()
            for each in option.options:
                group.add_argument(*each.flags, **each.kwargs)
        else:
            parser.add_argument(*option.flags, **option.kwargs)
    parser.set_defaults(func=command.func)


def build_parser() -> argparse.ArgumentParser:
    from relay.register import REGISTRARS

    parser = argparse.ArgumentParser(
        prog="relay", description="Chat-platform webhooks in, canonical CloudEvents out."
    )
    parser.add_argument("--version", action="version", version=f"relay {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        _add(commands, command)
    register = commands.add_parser(
        "register", help="point a provider's webhooks at this relay through its API"
    )
    providers = register.add_subparsers(dest="provider", required=True)
    for provider, unit in PROVIDERS.items():
        if provider in REGISTRARS:
            _add(providers, register_command(provider, unit))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return 130
