"""``workers:`` and ``--workers``: how many processes, and who a worker is."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from relay.app.serve import ListenError, bind
from relay.app.supervisor import RESTART_MAX, prepare_metrics_dir, restart_delay
from relay.cli import build_parser
from relay.config import ConfigError, parse
from relay.workers import (
    COUNT_ENV,
    LISTEN_FDS_ENV,
    SLOT_ENV,
    SUPERVISOR_ENV,
    Worker,
    count,
    current,
)


def test_workers_in_the_config() -> None:
    assert parse("{}", env={}).workers == 1
    assert parse("workers: 4", env={}).workers == 4
    assert parse("workers: auto", env={}).workers == "auto"
    for bad in ("0", "-1", "many"):
        with pytest.raises(ConfigError, match="workers"):
            parse(f"workers: {bad}", env={})


def test_count_of_auto_is_the_cores_this_process_may_use() -> None:
    assert count("auto") == len(os.sched_getaffinity(0))
    assert count(3) == 3
    with pytest.raises(ValueError, match="workers"):
        count(0)


def test_the_workers_flag(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    assert parser.parse_args(["serve", "--workers", "2"]).workers == 2
    assert parser.parse_args(["serve", "--workers", "auto"]).workers == "auto"
    assert parser.parse_args(["serve"]).workers is None  # the config decides
    for bad in ("0", "two"):
        with pytest.raises(SystemExit):
            parser.parse_args(["serve", "--workers", bad])
        assert "a number of processes" in capsys.readouterr().err


def test_a_worker_knows_its_slot_from_the_supervisor() -> None:
    assert current({}) is None
    env = {SLOT_ENV: "1", COUNT_ENV: "2", SUPERVISOR_ENV: "4242"}
    assert current(env) == Worker(slot=1, count=2, supervisor=4242)
    assert current({**env, LISTEN_FDS_ENV: "5,6"}) == Worker(1, 2, 4242, listen_fds=(5, 6))


def test_the_supervisors_port_is_its_own() -> None:
    (first,) = bind("127.0.0.1", 0)
    port = first.getsockname()[1]
    try:
        with pytest.raises(ListenError, match=rf"127.0.0.1:{port} \(listen\): the port is in use"):
            bind("127.0.0.1", port)
        # nor can a process that asks for SO_REUSEPORT join it (the workers once did)
        with socket.socket() as other:
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            with pytest.raises(OSError, match="in use"):
                other.bind(("127.0.0.1", port))
    finally:
        first.close()
    (again,) = bind("127.0.0.1", port)  # free once closed
    again.close()


def test_restart_delay_doubles_while_a_worker_dies_young() -> None:
    assert [restart_delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert restart_delay(50) == RESTART_MAX


def test_the_metrics_directory_is_emptied_at_start(tmp_path: Path) -> None:
    metrics = tmp_path / "var" / "metrics"
    prepare_metrics_dir(metrics)
    (metrics / "counter_123.db").write_bytes(b"old")
    (metrics / "keep.txt").write_text("not ours")
    prepare_metrics_dir(metrics)
    assert sorted(p.name for p in metrics.iterdir()) == ["keep.txt"]
    assert metrics.stat().st_mode & 0o777 == 0o700


def test_workers_with_the_console_need_an_admin_listener(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from relay.cli import main

    config = tmp_path / "relay.yaml"
    config.write_text(
        f"data_dir: {tmp_path / 'var'}\nlisten: {{host: 127.0.0.1, port: 1}}\n"
        "admin: {token: a-long-enough-admin-token-0123456789abcdef}\n"
    )
    assert main(["serve", "--config", str(config), "--workers", "2"]) == 1
    assert "workers: 2 with admin.token needs admin.listen" in capsys.readouterr().err


def test_check_says_how_many_workers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from relay.cli import main

    config = tmp_path / "relay.yaml"
    config.write_text(f"data_dir: {tmp_path / 'var'}\nworkers: 3\n")
    assert main(["check", "--config", str(config)]) == 0
    assert "workers  3 processes on that port (3)" in capsys.readouterr().out
    config.write_text(f"data_dir: {tmp_path / 'var'}\n")
    assert main(["check", "--config", str(config)]) == 0
    assert "workers" not in capsys.readouterr().out
