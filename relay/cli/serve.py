"""``relay serve``: one process, or a supervisor of ``--workers N``."""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path

from relay.cli.common import fail, load_config, refuse
from relay.config import Config


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

    config = load_config(args)
    worker = current_worker()
    workers = 1 if worker is not None else worker_count(args.workers or config.workers)
    host, port = args.host or config.listen.host, args.port or config.listen.port
    admin_address = None
    if config.admin.listen is not None:
        admin_address = (config.admin.listen.host, args.admin_port or config.admin.listen.port)
    elif args.admin_port:
        return fail("--admin-port moves admin.listen, which the configuration does not set", 2)
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
        return refuse(problems)
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
            # a worker listens on the sockets its supervisor bound and passed on
            sockets = [socket.socket(fileno=fd) for fd in worker.listen_fds] if worker else []
            runner.run(serve(app, host, port, grace=grace, admin=admin, sockets=sockets))
    except BusError as exc:
        return fail(f"cannot start the bus: {exc}")
    except ListenError as exc:
        return fail(str(exc))
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return fail(f"cannot start: {where}{exc.strerror or exc}")
    return 0


def _supervise(args: argparse.Namespace, config: Config, workers: int) -> int:
    """``relay serve --workers N`` (N > 1): start N workers and watch them."""
    import asyncio

    from relay.app.serve import ListenError, bind
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
        return fail(f"cannot prepare {metrics_dir}: {exc.strerror or exc}")
    host, port = args.host or config.listen.host, args.port or config.listen.port
    try:
        # bound here, once, for good: a second relay asking for the port is refused, and a
        # worker being restarted finds its connections waiting in the backlog
        sockets = bind(host, port)
    except ListenError as exc:
        return fail(str(exc))
    supervisor = Supervisor(command, workers, config.shutdown_grace, metrics_dir, sockets)
    try:
        return asyncio.run(supervisor.run())
    finally:
        for sock in sockets:
            sock.close()


def parse_workers(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: a number of processes (1 or more), or auto")
    return number
