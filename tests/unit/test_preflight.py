"""What serve needs from the machine, refused by ``relay check`` and ``relay serve`` in one
line each: a codec's missing library (with its extra), an unusable data_dir, a taken port."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from relay.cli import main
from relay.preflight import check_listen, data_dir, libraries
from tests.support import free_port, make_config

# The codec's library made unimportable, as on an install without the extra.
WITHOUT_CRAMJAM = (
    "import sys; sys.modules['cramjam'] = None; "
    "from relay.cli import main; raise SystemExit(main(sys.argv[1:]))"
)


def _relay_without_cramjam(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_CRAMJAM, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _kafka_config(tmp_path: Path, compression: str) -> str:
    path = tmp_path / "relay.yaml"
    path.write_text(
        f"data_dir: {tmp_path / 'var'}\n"
        f"kafka: {{bootstrap_servers: '127.0.0.1:9', compression: {compression}}}\n"
    )
    return str(path)


def test_zstd_without_its_library_is_refused_in_one_line(tmp_path: Path) -> None:
    config = _kafka_config(tmp_path, "zstd")
    expected = (
        "relay: kafka.compression: zstd needs the cramjam library, which is not installed: "
        "pip install 'relay[zstd]' (or 'relay[kafka]' for every codec)\n"
    )
    for command in ("check", "serve"):
        result = _relay_without_cramjam(command, "--config", config)
        assert (result.returncode, result.stderr, result.stdout) == (1, expected, ""), command


def test_gzip_needs_nothing_and_installed_codecs_pass(tmp_path: Path) -> None:
    result = _relay_without_cramjam("check", "--config", _kafka_config(tmp_path, "gzip"))
    assert result.returncode == 0, result.stderr
    # this environment has the extras (relay[dev] takes relay[kafka])
    for codec in ("snappy", "lz4", "zstd"):
        assert not libraries(make_config(f"kafka: {{bootstrap_servers: a, compression: {codec}}}"))


def test_data_dir_problems_name_data_dir(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    config = make_config(f"data_dir: {afile / 'var'}")
    assert data_dir(config) == [
        f"data_dir: cannot create {afile / 'var'}: {afile} is a file, not a directory"
    ]
    assert data_dir(make_config(f"data_dir: {afile}")) == [
        f"data_dir: {afile} is a file, not a directory"
    ]
    assert data_dir(make_config(f"data_dir: {tmp_path / 'new' / 'var'}")) == []
    assert not (tmp_path / "new").exists()  # checking creates nothing


def test_serve_and_check_refuse_a_bad_data_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    path = tmp_path / "relay.yaml"
    path.write_text(
        f"data_dir: {afile / 'var'}\nlisten: {{host: 127.0.0.1, port: {free_port()}}}\n"
    )
    for command in ("check", "serve"):
        assert main([command, "--config", str(path)]) == 1, command
        assert capsys.readouterr().err == (
            f"relay: data_dir: cannot create {afile / 'var'}: {afile} is a file, not a directory\n"
        ), command


def test_a_taken_port_is_named_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        expected = (
            f"cannot listen on 127.0.0.1:{port} (listen): the port is in use "
            "(another relay? pass --port or change listen.port)"
        )
        assert check_listen("127.0.0.1", port) == expected
        path = tmp_path / "relay.yaml"
        path.write_text(f"data_dir: {tmp_path}\nlisten: {{host: 127.0.0.1, port: {port}}}\n")
        assert main(["serve", "--config", str(path)]) == 1
    captured = capsys.readouterr()
    assert (captured.err, captured.out) == (f"relay: {expected}\n", "")


def test_an_address_not_on_this_host() -> None:
    problem = check_listen("192.0.2.1", free_port())  # TEST-NET-1: never a local address
    assert problem is not None and "no such address on this host (change listen.host)" in problem


def test_the_docs_show_the_codec_refusal_as_relay_prints_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aiokafka import codec

    monkeypatch.setattr(codec, "has_zstd", lambda: False)
    [problem] = libraries(make_config("kafka: {bootstrap_servers: a, compression: zstd}"))
    readme = (Path(__file__).parents[2] / "docs" / "commands.md").read_text()
    assert f"relay: {problem}\n" in readme


def test_check_skip_local_is_for_files_meant_elsewhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    path = tmp_path / "relay.yaml"
    path.write_text(f"data_dir: {afile / 'var'}\n")
    assert main(["check", "--config", str(path)]) == 1
    capsys.readouterr()
    assert main(["check", "--config", str(path), "--skip-local", "--strict"]) == 0
    assert capsys.readouterr().out.startswith("configuration OK")
