"""``relay``: serve, check, normalize, tail, replay, schema, asyncapi, register."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

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

__all__ = ["build_parser", "main", "tail_options"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relay", description="Chat-platform webhooks in, canonical CloudEvents out."
    )
    parser.add_argument("--version", action="version", version=f"relay {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", "-c", help="YAML configuration (default: $RELAY_CONFIG)")

    serve = commands.add_parser(
        "serve",
        help="run the webhook gateway",
        description="Run the webhook gateway. It checks what it needs first (optional "
        "libraries, data_dir, the listen addresses) and refuses in one line if any is "
        "missing.",
    )
    with_config(serve)
    serve.add_argument(
        "--role",
        choices=["all", "ingress", "delivery"],
        default="all",
        help="ingress: hooks only; delivery: subscribers only; all: both (default)",
    )
    serve.add_argument("--host", help="override listen.host")
    serve.add_argument("--port", type=int, help="override listen.port")
    serve.add_argument("--admin-port", type=int, help="override admin.listen.port")
    serve.add_argument(
        "--workers",
        type=parse_workers,
        help="override workers: processes sharing the port (auto: one per core); 1 is one "
        "process, no supervisor",
    )
    serve.set_defaults(func=cmd_serve)

    check = commands.add_parser(
        "check",
        help="validate a configuration, print the routing table",
        description="Validate a configuration the way serve does (values, optional libraries, "
        "data_dir), print the routing table, and warn about what cannot work "
        "(unreachable subscribers, globs that match no type, where paths no event has).",
    )
    with_config(check)
    check.add_argument(
        "--connect", action="store_true", help="also connect to Kafka as serve would"
    )
    check.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    check.add_argument(
        "--skip-local",
        action="store_true",
        help="skip what depends on this machine (optional libraries, data_dir): for a file "
        "meant for another one, e.g. in CI",
    )
    check.set_defaults(func=cmd_check)

    normalize = commands.add_parser(
        "normalize", help="print the canonical events of a payload file as JSON lines"
    )
    normalize.add_argument("file", help="payload file, or - for standard input")
    normalize.add_argument("--provider", required=True, choices=sorted(PROVIDERS))
    normalize.add_argument("--kind", help="PlugChat kind (the URL part), e.g. finishAttendance")
    normalize.add_argument("--source", help="source name to stamp on the events")
    normalize.set_defaults(func=cmd_normalize)

    tail = commands.add_parser(
        "tail",
        help="print a topic's records (embedded log or Kafka)",
        description="Print a topic's records, one per line: the value as stored, or with "
        "--headers a JSON object with topic, partition, offset, timestamp, key, headers "
        "and value. --deadletter shows why each record was dead-lettered.",
    )
    with_config(tail)
    tail.add_argument("--topic", help="topic (default: the events topic)")
    start = tail.add_mutually_exclusive_group()
    start.add_argument(
        "--after", type=int, help="start after this offset (Kafka: in each partition)"
    )
    start.add_argument(
        "--last", "-n", type=int, help="start N records before the end (Kafka: of each partition)"
    )
    tail.add_argument("--partition", type=int, help="read only this partition (Kafka)")
    tail.add_argument(
        "--limit", type=int, help="stop after this many records (default 1000; none with -f)"
    )
    tail.add_argument("--follow", "-f", action="store_true", help="keep waiting for new records")
    tail.add_argument(
        "--headers", action="store_true", help="JSON lines with offsets, partition and headers"
    )
    tail.add_argument(
        "--deadletter",
        action="store_true",
        help="the dead-letter topic, with origin (ingest/delivery), reason and error",
    )
    tail.add_argument("--subscriber", help="with --deadletter: only this subscriber's")
    tail.set_defaults(func=cmd_tail)

    replay = commands.add_parser(
        "replay",
        help="redeliver events to one subscriber",
        description="Redeliver a bounded range to one subscriber, without moving its live "
        "position.",
        epilog="exit status: 0 when everything was delivered, 3 when some were "
        "dead-lettered again, 1 on an error",
    )
    with_config(replay)
    replay.add_argument("--subscriber", required=True, help="subscriber name")
    start = replay.add_mutually_exclusive_group()
    start.add_argument("--since", help="an RFC 3339 time, or a duration ago such as 2h")
    start.add_argument("--from-offset", type=int, help="topic offset to start from")
    replay.add_argument(
        "--deadletter",
        action="store_true",
        help="re-send what was dead-lettered for it (all, or those since --since)",
    )
    replay.set_defaults(func=cmd_replay)

    schema = commands.add_parser(
        "schema",
        help="print the canonical event's JSON Schema",
        description="Print the canonical event's JSON Schema (draft 2020-12), generated "
        "from the event definition.",
    )
    schema.set_defaults(func=cmd_schema)

    spec = commands.add_parser(
        "asyncapi", help="print an AsyncAPI 3.0 document of the topics and HTTP endpoints"
    )
    with_config(spec)
    spec.add_argument("--format", choices=["yaml", "json"], default="yaml")
    spec.set_defaults(func=cmd_asyncapi)

    register = commands.add_parser(
        "register", help="point a provider's webhooks at this relay through its API"
    )
    providers = register.add_subparsers(dest="provider", required=True)
    from relay.register import REGISTRARS

    for provider, unit in PROVIDERS.items():
        if provider not in REGISTRARS:
            continue
        example = unit.register_example_url
        p = providers.add_parser(provider, help=f"register a {provider} source's webhooks")
        with_config(p)
        p.add_argument("--source", required=True, help=f"the configured {provider} source")
        p.add_argument("--public-url", required=True, help="where providers reach this relay")
        if unit.register_needs_account:
            p.add_argument("--account", required=True, help=f"{unit.title} account id")
        env = provider.upper()
        p.add_argument("--api-url", help=f"{provider} API base, e.g. {example} (${env}_API_URL)")
        p.add_argument(
            "--api-token",
            help=f"{provider} API token, or '$VAR' to read it from VAR "
            f"(default: ${env}_API_TOKEN); a literal token shows in ps",
        )
        p.add_argument("--api-token-file", help=f"read the {provider} API token from this file")
        p.add_argument(
            "--insecure",
            action="store_true",
            help="allow a plain http:// --api-url (the API token crosses the network in clear)",
        )
        p.set_defaults(func=cmd_register)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return 130
