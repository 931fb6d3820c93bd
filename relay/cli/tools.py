"""The offline and operator subcommands: normalize, tail, schema, asyncapi, register, replay."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from relay.config import Config, ConfigError, load
from relay.providers import PROVIDERS

if TYPE_CHECKING:
    from relay.tail import Options as TailOptions


from relay.cli.common import fail, load_config


def cmd_normalize(args: argparse.Namespace) -> int:
    from relay.api import normalize
    from relay.cloudevents import encode
    from relay.providers import MalformedBody, Unmappable

    try:
        body = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        return fail(f"{args.file}: cannot read: {exc.strerror or exc}")
    provider = PROVIDERS[args.provider]
    if provider.takes_kind and not args.kind:
        example = provider.kinds[-1]
        return fail(f"{provider.name} payloads need --kind (e.g. --kind {example})", 2)
    try:
        events = normalize(args.provider, body, kind=args.kind, source=args.source)
    except MalformedBody as exc:
        return fail(f"{args.file}: {exc}")
    except Unmappable as exc:
        return fail(f"{args.file}: cannot normalize ({exc.reason}): {exc.detail}")
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

    config = load_config(args)
    options = tail_options(args)
    if options.subscriber is not None and not options.deadletter:
        return fail("--subscriber goes with --deadletter", 2)
    out = sys.stdout.buffer

    def write(line: bytes) -> None:
        out.write(line)
        if options.follow:
            out.flush()

    try:
        run(config, options, write)
        out.flush()
    except TailError as exc:
        return fail(str(exc))
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

    config = load_config(args)
    if args.provider not in REGISTRARS:
        return fail(f"{args.provider} has no webhook registration API", 2)
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
        return fail(str(exc))
    print(registration.report())
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    import asyncio

    from relay import telemetry
    from relay.bus import BusError, RangeStart
    from relay.delivery.replay import ReplayError, range_start, replay
    from relay.delivery.tally import Stats
    from relay.logs import configure

    config = load_config(args)
    configure(config.logging.level, config.logging.format)

    async def traced_replay(start: RangeStart | None) -> Stats:
        # spans of the redeliveries join each event's original trace, when relay traces
        tracing = telemetry.start(config)
        try:
            return await replay(
                config,
                args.subscriber,
                start,
                deadletter=args.deadletter,
                tracing=tracing,
            )
        finally:
            if tracing is not None:
                await tracing.close(within=5.0)

    try:
        stats = asyncio.run(traced_replay(range_start(args.since, args.from_offset)))
    except ConfigError as exc:
        return fail(str(exc))
    except ReplayError as exc:
        return fail(str(exc))
    except BusError as exc:
        return fail(f"cannot open the bus: {exc}")
    print(
        f"replayed to {args.subscriber}: {stats.delivered} delivered, "
        f"{stats.deadlettered} dead-lettered, {stats.retried} retries"
    )
    return 0 if stats.deadlettered == 0 else 3
