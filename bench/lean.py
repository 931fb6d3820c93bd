"""relay's lean hook path in one process, no sockets, no broker: what relay's own code costs.

A :class:`~relay.ingress.lean.LeanConnection` of relay's whole ingress app (built from the
bench's configuration, the heap settled as ``relay serve`` settles it) on a bus that holds
nothing is fed the bench's Chatwoot requests one at a time, each a fresh message id, and
its answers are checked (202). It prints the CPU µs a request (``time.process_time``, the
best of ``--rounds``).

On a shared machine the CPU figure moves with the neighbours' load; the count of
instructions does not. Run it twice under valgrind and take the difference::

    valgrind --tool=cachegrind --cache-sim=no python -m bench.lean --requests 300 --rounds 1
    valgrind --tool=cachegrind --cache-sim=no python -m bench.lean --requests 1300 --rounds 1

(``I refs`` of the second minus the first, over 1,000: instructions a request, start-up
cancelled out; ``PYTHONHASHSEED=0`` for both; ~1 minute each.)
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from bench.run import HOOK, RELAY_CONFIG, TOKEN, make_bodies
from bench.targets import NullBus


class Transport:
    """What the connection writes to: counts the answers, wakes the feeder at each."""

    def __init__(self) -> None:
        self.answers = 0
        self.refused = 0
        self.waiter: asyncio.Future[None] | None = None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def write(self, data: bytes) -> None:
        if not data.startswith(b"HTTP/1.1 202 "):
            self.refused += 1
        self.answers += 1
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False


async def measure(requests: int, rounds: int, extra: str) -> float:
    from relay.app import build_app, heap
    from relay.config import load
    from relay.ingress.lean import LeanServer
    from relay.logs import configure

    work = Path(tempfile.mkdtemp(prefix="relay-bench-lean-"))
    config_path = work / "relay.yaml"
    config_path.write_text(
        RELAY_CONFIG.format(port=1, data_dir=work / "var", kafka="", token=TOKEN, extra=extra)
    )
    bodies = work / "bodies.txt"
    make_bodies(bodies, 64)
    templates = [line.split(b"@ID@") for line in bodies.read_bytes().splitlines()]
    head = (
        f"POST {HOOK} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode()
    config = load(str(config_path))
    configure("warning", config.logging.format)
    app = build_app(config, bus=NullBus(), role="ingress")
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    heap.settle()
    lean = LeanServer(app, runner.server)
    loop = asyncio.get_running_loop()
    next_id = 10**12
    best = float("inf")
    try:
        for _ in range(rounds):
            batch = []
            for n in range(requests):
                next_id += 1
                body = b"%d" % next_id
                body = body.join(templates[n % len(templates)])
                batch.append(b"%s%d\r\n\r\n%s" % (head, len(body), body))
            transport = Transport()
            connection = lean()
            connection.connection_made(transport)  # type: ignore[arg-type]
            started = time.process_time()
            for data in batch:
                transport.waiter = loop.create_future()
                connection.data_received(data)
                await transport.waiter
            spent = time.process_time() - started
            connection.connection_lost(None)
            if transport.refused:
                raise SystemExit(f"{transport.refused} of {requests} requests not accepted")
            best = min(best, spent / requests * 1e6)
    finally:
        await runner.cleanup()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=4000, help="a round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--relay-yaml", default="", help="extra top-level YAML for relay")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        run = asyncio.run
    else:
        run = uvloop.run
    best = run(measure(args.requests, args.rounds, args.relay_yaml))
    print(f"{best:.1f} CPU µs a request (best of {args.rounds} x {args.requests})")


if __name__ == "__main__":
    main()
