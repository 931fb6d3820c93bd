"""``relay``: serve, check, normalize, tail, replay, schema, asyncapi, register."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from relay import __version__
from relay.config import Config, ConfigError, Kafka, load
from relay.providers import PROVIDERS
from relay.urls import without_query

if TYPE_CHECKING:
    from relay.tail import Options as TailOptions


def _fail(message: str, code: int = 1) -> int:
    print(f"relay: {message}", file=sys.stderr)
    return code


def _config(args: argparse.Namespace) -> Config:
    path = args.config or os.environ.get("RELAY_CONFIG")
    if not path:
        raise ConfigError("no configuration: pass --config PATH or set RELAY_CONFIG")
    return load(path)


def _refuse(problems: Sequence[str]) -> int:
    for problem in problems:
        print(f"relay: {problem}", file=sys.stderr)
    return 1


def cmd_serve(args: argparse.Namespace) -> int:
    import asyncio

    import structlog

    from relay import checks, preflight
    from relay.app import RELOADER, build_admin_app, build_app
    from relay.app.serve import ListenError, new_event_loop, serve
    from relay.bus import BusError
    from relay.hardening import insecure_listen
    from relay.logs import configure
    from relay.workers import count as worker_count
    from relay.workers import current as current_worker

    config = _config(args)
    worker = current_worker()
    workers = 1 if worker is not None else worker_count(args.workers or config.workers)
    host, port = args.host or config.listen.host, args.port or config.listen.port
    admin_address = None
    if config.admin.listen is not None:
        admin_address = (config.admin.listen.host, args.admin_port or config.admin.listen.port)
    elif args.admin_port:
        return _fail("--admin-port moves admin.listen, which the configuration does not set", 2)
    problems = preflight.problems(config)
    if (refusal := insecure_listen(config, host)) is not None:
        problems.append(refusal)
    elif config.admin.listen is not None and (
        refusal := insecure_listen(config, config.admin.listen.host)
    ):
        problems.append(f"admin.listen: {refusal}")
    addresses = [(host, port, "listen")]
    if admin_address is not None:
        addresses.append((*admin_address, "admin.listen"))
    for address in addresses if worker is None else ():  # a worker's siblings hold them
        taken = preflight.check_listen(*address)
        if taken:
            problems.append(taken)
    if workers > 1 and config.admin.token is not None and config.admin.listen is None:
        problems.append(
            f"workers: {workers} with admin.token needs admin.listen: the console and the "
            "admin API run in one worker, which only a listener of their own reaches"
        )
    if problems:
        return _refuse(problems)
    os.umask(0o077)  # everything relay writes (data_dir, logs, spool, locks) is its own only
    configure(config.logging.level, config.logging.format)
    if worker is None:  # the supervisor said it already
        for warning in checks.warnings(config):
            structlog.get_logger("relay.check").warning("config_warning", detail=warning)
    if workers > 1:
        return _supervise(args, config, workers)
    from relay import telemetry

    tracing = telemetry.start(config)  # None unless an OTLP endpoint is set (each worker's own)
    if tracing is not None:
        endpoint = telemetry.shown(telemetry.otlp_endpoint(config.telemetry) or "")
        structlog.get_logger("relay.telemetry").info("tracing_on", endpoint=endpoint)
    app = build_app(
        config,
        role=args.role,
        config_path=Path(args.config or os.environ["RELAY_CONFIG"]),
        reload_on_sighup=True,
        index=worker is None or worker.slot == 0,
        tracing=tracing,
    )
    app[RELOADER].listen_host = host
    if worker is not None:
        from relay.app.worker import as_worker

        as_worker(app, worker)
    admin = None
    if admin_address is not None and (worker is None or worker.slot == 0):
        admin = (build_admin_app(app), *admin_address)
    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            grace = config.shutdown_grace
            reuse = worker is not None
            runner.run(serve(app, host, port, grace=grace, admin=admin, reuse_port=reuse))
    except BusError as exc:
        return _fail(f"cannot start the bus: {exc}")
    except ListenError as exc:
        return _fail(str(exc))
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"cannot start: {where}{exc.strerror or exc}")
    return 0


def _supervise(args: argparse.Namespace, config: Config, workers: int) -> int:
    """``relay serve --workers N`` (N > 1): start N workers and watch them."""
    import asyncio

    from relay.app.supervisor import Supervisor, prepare_metrics_dir

    command = ["serve", "--config", args.config or os.environ["RELAY_CONFIG"], "--role", args.role]
    for flag, value in (("--host", args.host), ("--port", args.port)):
        if value:
            command += [flag, str(value)]
    if args.admin_port:
        command += ["--admin-port", str(args.admin_port)]
    metrics_dir = config.data_path / "metrics"
    try:
        prepare_metrics_dir(metrics_dir)
    except OSError as exc:
        return _fail(f"cannot prepare {metrics_dir}: {exc.strerror or exc}")
    supervisor = Supervisor(command, workers, config.shutdown_grace, metrics_dir)
    return asyncio.run(supervisor.run())


def _workers(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: a number of processes (1 or more), or auto")
    return number


def _patterns(value: str | list[str] | None) -> str:
    if value is None:
        return "*"
    return value if isinstance(value, str) else ",".join(value)


def cmd_check(args: argparse.Namespace) -> int:
    from relay import checks, preflight
    from relay.hardening import insecure_listen

    config = _config(args)
    problems = [] if args.skip_local else preflight.problems(config)
    notes: list[str] = []
    if args.connect and not problems:
        notes, unreachable = preflight.broker(config)
        problems += unreachable
    if problems:
        return _refuse(problems)
    warnings = checks.warnings(config)
    if (refusal := insecure_listen(config, config.listen.host)) is not None:
        warnings.append(f"relay serve will refuse this: {refusal}")
    bus = (
        f"kafka {','.join(config.kafka.servers)} {_kafka_security(config.kafka)}"
        + ("" if args.connect else " (not contacted: --connect checks it)")
        if config.kafka
        else (f"embedded log in {config.data_dir}")
    )
    verdict = f"with {len(warnings)} warning(s)" if warnings else "OK"
    print(f"configuration {verdict}: {args.config or os.environ.get('RELAY_CONFIG')}")
    print(f"listen   {config.listen.host}:{config.listen.port}")
    if config.workers != 1:
        from relay.workers import count

        print(f"workers  {count(config.workers)} processes on that port ({config.workers})")
    if config.admin.listen is not None:
        admin = config.admin.listen
        print(f"admin    {admin.host}:{admin.port} (/metrics, /admin/*; not on listen)")
    print(f"bus      {bus}")
    from relay import telemetry

    endpoint = telemetry.otlp_endpoint(config.telemetry)
    print(f"tracing  {'OTLP/HTTP to ' + telemetry.shown(endpoint) if endpoint else 'off'}")
    print(
        f"topics   events={config.topics.events} raw={config.topics.raw} "
        f"deadletter={config.topics.deadletter}"
    )
    print("\nsources")
    for name, source in sorted(config.sources.items()):
        auths = [
            f"{len(source.tokens)} token(s)" if source.tokens else "",
            "hmac signature" if source.signing_secret else "",
            f"cidr {','.join(source.allow_cidrs)}" if source.allow_cidrs else "",
        ]
        auth = ", ".join(c for c in auths if c) or "OPEN (no authentication)"
        takes_kind = PROVIDERS[source.provider].takes_kind
        path = f"/v1/hooks/{name}" + ("/{kind}" if takes_kind else "")
        print(f"  {name:<16} {source.provider:<9} POST {path:<32} {auth}")
    print(
        f"\nroutes (every matching route publishes; unmatched events go to {config.topics.events})"
    )
    rows = [("ROUTE", "TYPE", "SOURCE", "PROVIDER", "WHERE", "TOPIC")]
    for route in config.routes:
        where = ",".join(f"{k}={v}" for k, v in (route.match.where or {}).items()) or "-"
        rows.append(
            (
                route.name,
                _patterns(route.match.type),
                _patterns(route.match.source),
                _patterns(route.match.provider),
                where,
                route.topic,
            )
        )
    rows.append(("(default)", "*", "*", "*", "-", config.topics.events))
    _print_table(rows)
    if config.subscribers:
        print("\nsubscribers (each its own consumer group relay.sub.<name>)")
        subs = [("SUBSCRIBER", "TOPICS", "TYPE", "WHERE", "URL", "SIGNED")]
        for sub in config.subscribers:
            where = ",".join(f"{k}={v}" for k, v in (sub.match.where or {}).items()) or "-"
            subs.append(
                (
                    sub.name,
                    ",".join(sub.topic_list(config.topics.events)),
                    _patterns(sub.match.type),
                    where,
                    without_query(sub.url),
                    "yes" if sub.all_secrets else "no",
                )
            )
        _print_table(subs)
        _print_disabled(config)
    if notes:
        print()
        print("\n".join(notes))
    for warning in warnings:
        print(f"relay: warning: {warning}", file=sys.stderr)
    return 1 if warnings and args.strict else 0


def _print_disabled(config: Config) -> None:
    """Subscribers an endpoint disabled with 410 Gone (state kept under data_dir)."""
    from relay.delivery.state import read_only_disabled

    for sub in config.subscribers:
        disabled = read_only_disabled(config.data_path, sub)
        if disabled is not None:
            print(
                f"  DISABLED {sub.name}: its endpoint answered {disabled.status or 410} "
                f"({disabled.reason}); POST /admin/api/subscribers/{sub.name}/enable resumes it"
            )


def _kafka_security(kafka: Kafka) -> str:
    """``SASL_SSL SCRAM-SHA-512 as relay, CA ca.pem`` (never the password)."""
    parts: list[str] = [kafka.security_protocol]
    if kafka.security_protocol.startswith("SASL_"):
        who = f" as {kafka.sasl_plain_username}" if kafka.sasl_plain_username else ""
        parts.append(f"{kafka.sasl_mechanism}{who}")
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        parts.append(f"CA {kafka.ssl_cafile}" if kafka.ssl_cafile else "system CAs")
        if kafka.ssl_certfile:
            parts.append(f"client certificate {kafka.ssl_certfile}")
        if not kafka.ssl_check_hostname:
            parts.append("hostname not checked")
    return ", ".join(parts)


def _print_table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print(("  " + "  ".join(cells)).rstrip())


def cmd_normalize(args: argparse.Namespace) -> int:
    from relay.api import normalize
    from relay.cloudevents import encode
    from relay.providers import MalformedBody, Unmappable

    try:
        body = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        return _fail(f"{args.file}: cannot read: {exc.strerror or exc}")
    provider = PROVIDERS[args.provider]
    if provider.takes_kind and not args.kind:
        example = provider.kinds[-1]
        return _fail(f"{provider.name} payloads need --kind (e.g. --kind {example})", 2)
    try:
        events = normalize(args.provider, body, kind=args.kind, source=args.source)
    except MalformedBody as exc:
        return _fail(f"{args.file}: {exc}")
    except Unmappable as exc:
        return _fail(f"{args.file}: cannot normalize ({exc.reason}): {exc.detail}")
    out = sys.stdout.buffer
    for event in events:
        out.write(encode(event) + b"\n")
    out.flush()
    return 0


def tail_options(args: argparse.Namespace) -> TailOptions:
    from relay.tail import Options

    return Options(
        topic=args.topic,
        after=args.after,
        last=args.last,
        partition=args.partition,
        limit=args.limit if args.limit is not None else (None if args.follow else 1000),
        follow=args.follow,
        headers=args.headers,
        deadletter=args.deadletter,
        subscriber=args.subscriber,
    )


def cmd_tail(args: argparse.Namespace) -> int:
    from relay.tail import TailError, run

    config = _config(args)
    options = tail_options(args)
    if options.subscriber is not None and not options.deadletter:
        return _fail("--subscriber goes with --deadletter", 2)
    out = sys.stdout.buffer

    def write(line: bytes) -> None:
        out.write(line)
        if options.follow:
            out.flush()

    try:
        run(config, options, write)
        out.flush()
    except TailError as exc:
        return _fail(str(exc))
    except BrokenPipeError:
        # The reader went away (`relay tail | head`): that is the end, not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from relay.contracts import event_schema, render

    sys.stdout.write(render(event_schema(), "json"))
    return 0


def cmd_asyncapi(args: argparse.Namespace) -> int:
    from relay.contracts import asyncapi, render

    path = args.config or os.environ.get("RELAY_CONFIG")
    sys.stdout.write(render(asyncapi(load(path) if path else Config()), args.format))
    return 0


def cmd_register(args: argparse.Namespace) -> int:
    import asyncio

    from relay.register import API_TOKEN_ENV, REGISTRARS, RegisterError, register

    config = _config(args)
    if args.provider not in REGISTRARS:
        return _fail(f"{args.provider} has no webhook registration API", 2)
    if args.api_token and not args.api_token.startswith("$"):
        print(
            "relay: warning: --api-token on the command line shows in ps and the shell "
            f"history; prefer ${API_TOKEN_ENV[args.provider]}, --api-token-file PATH or "
            "--api-token '$VAR'",
            file=sys.stderr,
        )
    try:
        registration: Any = asyncio.run(
            register(
                config,
                args.provider,
                source=args.source,
                public_url=args.public_url,
                account=getattr(args, "account", None),
                api_url=args.api_url,
                api_token=args.api_token,
                api_token_file=args.api_token_file,
                insecure=args.insecure,
            )
        )
    except RegisterError as exc:
        return _fail(str(exc))
    print(registration.report())
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    import asyncio

    from relay import telemetry
    from relay.bus import BusError
    from relay.delivery.replay import ReplayError, parse_since, replay
    from relay.delivery.worker import Stats
    from relay.logs import configure

    config = _config(args)
    configure(config.logging.level, config.logging.format)

    async def traced_replay(since_ms: int | None) -> Stats:
        # spans of the redeliveries join each event's original trace, when relay traces
        tracing = telemetry.start(config)
        try:
            return await replay(
                config,
                args.subscriber,
                since_ms=since_ms,
                from_offset=args.from_offset,
                deadletter=args.deadletter,
                tracing=tracing,
            )
        finally:
            if tracing is not None:
                await tracing.close(within=5.0)

    try:
        since_ms = parse_since(args.since) if args.since else None
        stats = asyncio.run(traced_replay(since_ms))
    except ConfigError as exc:
        return _fail(str(exc))
    except ReplayError as exc:
        return _fail(str(exc))
    except BusError as exc:
        return _fail(f"cannot open the bus: {exc}")
    print(
        f"replayed to {args.subscriber}: {stats.delivered} delivered, "
        f"{stats.deadlettered} dead-lettered, {stats.retried} retries"
    )
    return 0 if stats.deadlettered == 0 else 3


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
        type=_workers,
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
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130
