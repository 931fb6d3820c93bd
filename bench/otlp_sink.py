"""A stand-in OpenTelemetry collector for the tracing rows: takes OTLP/HTTP, keeps counts.

``python -m bench.otlp_sink --port P``: answers every ``POST /v1/traces`` with 200 after
reading it, and ``GET /count`` with ``{"requests": n, "bytes": n}``. It parses nothing, so the
cost measured is relay's (building, batching, encoding and posting spans), not a collector's.
"""

from __future__ import annotations

import argparse

from aiohttp import web


def app() -> web.Application:
    counts = {"requests": 0, "bytes": 0}

    async def traces(request: web.Request) -> web.Response:
        counts["bytes"] += len(await request.read())
        counts["requests"] += 1
        return web.Response(status=200, content_type="application/x-protobuf")

    async def count(request: web.Request) -> web.Response:
        return web.json_response(counts)

    application = web.Application(client_max_size=64 * 1024 * 1024)
    application.router.add_post("/v1/traces", traces)
    application.router.add_get("/count", count)
    return application


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.otlp_sink")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(app(), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
