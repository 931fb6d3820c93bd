"""The servers relay is measured against, each run as its own process.

- ``bare``: an aiohttp handler that reads the body and answers 202. The ceiling.
- ``forward``: a bare handler that awaits one aiokafka ``send_and_wait`` of the body.
- ``naive``: relay's own pipeline (auth, normalize, route, raw copy) on a bus that awaits
  ``send_and_wait`` for each record, one after the other: the obvious first version.

Diagnostics (``python -m bench --diagnose``), to see where relay's time goes:

- ``normalize``: a bare handler that also runs the Chatwoot normalizer and encodes the events.
- ``nullbus``: relay's whole application on a bus that holds nothing and answers at once
  (its heap settled as ``relay serve`` settles it, as ``group``'s).
- ``group``: relay's application on its group-commit ``KafkaBus`` alone, without the spool
  that ``relay serve`` wraps around it: the same app as ``naive`` but for the bus.

``python -m bench.targets TARGET --port P [--bootstrap B] [--config C]``
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiohttp import web

ACCEPTED = b'{"accepted":1}'


def bare_app() -> web.Application:
    async def hook(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=202, body=ACCEPTED, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/hooks/{source}", hook)
    return app


def normalize_app() -> web.Application:
    from relay.cloudevents import encode
    from relay.providers import NORMALIZERS, Inbound

    normalize = NORMALIZERS["chatwoot"]

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        inbound = Inbound(source="nexloo", body=body, received_at="2026-01-01T00:00:00.000Z")
        for event in normalize(inbound):
            encode(event)
        return web.Response(status=202, body=ACCEPTED, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/hooks/{source}", hook)
    return app


class NullBus:
    """Holds nothing, answers at once: relay's cost without any bus."""

    name = "null"
    mode = None

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def ready(self) -> bool:
        return True

    async def publish(self, records: Sequence[Any]) -> None:
        pass


def _producer(bootstrap: str) -> Any:
    from aiokafka import AIOKafkaProducer

    # The same producer settings relay uses (a 16 KB default batch would cap every produce
    # request at ~5 of these bodies and measure that, not the hot path).
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,
        client_id="bench",
        max_batch_size=1024 * 1024,
    )


def forward_app(bootstrap: str, topic: str) -> web.Application:
    producers: list[Any] = []

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        key = request.match_info["source"].encode()
        await producers[0].send_and_wait(topic, body, key=key)
        return web.Response(status=202, body=ACCEPTED, content_type="application/json")

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        producers.append(_producer(bootstrap))
        await producers[0].start()
        yield
        await producers[0].stop()

    app = web.Application()
    app.cleanup_ctx.append(lifetime)
    app.router.add_post("/v1/hooks/{source}", hook)
    return app


class NaiveKafkaBus:
    """relay's Bus protocol, the naive way: one awaited ``send_and_wait`` per record."""

    name = "kafka-naive"
    mode = None

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._producer: Any = None
        self._started = False

    async def start(self) -> None:
        self._producer = _producer(self._bootstrap)
        await self._producer.start()
        self._started = True

    async def close(self) -> None:
        self._started = False
        await self._producer.stop()

    def ready(self) -> bool:
        return self._started

    async def publish(self, records: Sequence[Any]) -> None:
        for r in records:
            await self._producer.send_and_wait(
                r.topic, r.value, key=r.key, headers=list(r.headers) or None
            )


def relay_app(config_path: str, bus: str) -> web.Application:
    from relay.app import build_app
    from relay.config import load
    from relay.logs import configure

    config = load(config_path)
    assert config.kafka is not None, "the bench configuration names the broker"
    configure(config.logging.level, config.logging.format)
    if bus == "null":
        return build_app(config, bus=NullBus(), role="ingress")
    if bus == "group":
        from relay.bus.kafka import KafkaBus

        return build_app(config, bus=KafkaBus(config.kafka), role="ingress")
    return build_app(config, bus=NaiveKafkaBus(",".join(config.kafka.servers)), role="ingress")


def main() -> None:
    parser = argparse.ArgumentParser()
    targets = ["bare", "forward", "naive", "normalize", "nullbus", "group"]
    parser.add_argument("target", choices=targets)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bootstrap")
    parser.add_argument("--topic", default="bench.forward")
    parser.add_argument("--config")
    parser.add_argument(
        "--workers", type=int, default=1, help="processes on the port (SO_REUSEPORT)"
    )
    parser.add_argument("--shared-port", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    # --workers N: N-1 copies of this process with --workers 1 besides this one; all listen
    # with SO_REUSEPORT (as relay serve --workers N does), and go when this one goes
    copies = [
        subprocess.Popen([sys.executable, "-m", "bench.targets", *_one_worker(sys.argv[1:])])
        for _ in range(args.workers - 1)
    ]
    try:
        import uvloop
    except ImportError:
        loop_factory = None
    else:
        loop_factory = uvloop.new_event_loop
    if args.target == "bare":
        app = bare_app()
    elif args.target == "normalize":
        app = normalize_app()
    elif args.target == "forward":
        app = forward_app(args.bootstrap, args.topic)
    elif args.target in ("naive", "group"):
        app = relay_app(args.config, args.target)
    else:
        app = relay_app(args.config, "null")
    if args.target in ("nullbus", "group"):
        # the diagnostics measure relay's app as relay serve runs it: the heap settled once
        # it is up (the naive relay, a first version, keeps CPython's defaults)
        from relay.app import heap

        async def settle(app: web.Application) -> None:
            heap.settle()

        app.on_startup.append(settle)
    runner_loop = loop_factory() if loop_factory else asyncio.new_event_loop()
    try:
        web.run_app(
            app,
            host="127.0.0.1",
            port=args.port,
            access_log=None,
            print=None,
            loop=runner_loop,
            reuse_port=True if args.workers > 1 or args.shared_port else None,
        )
    finally:
        for copy in copies:
            copy.terminate()
        for copy in copies:
            copy.wait()


def _one_worker(argv: list[str]) -> list[str]:
    """These arguments for one of the copies: one worker, on the shared port."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            out.append(arg)
    return [*out, "--shared-port"]


if __name__ == "__main__":
    main()
