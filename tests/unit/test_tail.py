"""``relay tail`` on the embedded log: values, headers and offsets, dead letters, follow,
and a clean end when the reader closes the pipe."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from relay.bus.base import Record
from relay.bus.embedded import EmbeddedLog
from relay.cli import main

EVENT = b'{"id":"e1","type":"chat.message.created"}'


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "relay.yaml"
    path.write_text(f"data_dir: {tmp_path / 'var'}\n")
    return path


def _publish(tmp_path: Path, records: list[Record]) -> None:
    async def go() -> None:
        log = EmbeddedLog(tmp_path / "var")
        await log.start()
        try:
            await log.publish(records)
        finally:
            await log.close()

    asyncio.run(go())


def _dead_letters() -> list[Record]:
    return [
        Record(
            "relay.deadletter",
            b"{nope",
            b"nexloo",
            (("relay-reason", b"malformed_json"), ("relay-error", b"not valid JSON")),
        ),
        Record(
            "relay.deadletter",
            EVENT,
            b"conv-1",
            (
                ("relay-reason", b"delivery_exhausted"),
                ("relay-subscriber", b"crm"),
                ("relay-event-id", b"e1"),
                ("relay-attempts", b"3"),
                ("relay-last-status", b"500"),
                ("relay-error", b"HTTP 500: nope"),
            ),
        ),
    ]


def test_tail_prints_values(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _publish(tmp_path, [Record("chat.events", EVENT + b"\n"), Record("other", b"x")])
    assert main(["tail", "--config", str(_config(tmp_path))]) == 0
    assert capsys.readouterr().out == EVENT.decode() + "\n"


def test_tail_headers_are_json_lines_with_offsets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _publish(
        tmp_path,
        [
            Record("relay.raw", b"raw body\n", b"nexloo", (("relay-source", b"nexloo"),)),
            Record("relay.raw", b'{"a": 1}', None, ()),
        ],
    )
    config = str(_config(tmp_path))
    assert main(["tail", "-c", config, "--topic", "relay.raw", "--headers"]) == 0
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert first["topic"] == "relay.raw" and first["partition"] == 0
    assert first["key"] == "nexloo" and first["headers"] == {"relay-source": "nexloo"}
    assert first["value"] == "raw body\n"  # not JSON: its text, bytes kept
    assert second["value"] == {"a": 1} and second["key"] is None
    assert second["offset"] > first["offset"]
    assert first["timestamp"].endswith("Z")
    # --after starts past an offset that --headers printed
    assert (
        main(["tail", "-c", config, "--topic", "relay.raw", "--after", str(first["offset"])]) == 0
    )
    assert capsys.readouterr().out == '{"a": 1}\n'


def test_tail_deadletter_says_why_and_where_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _publish(tmp_path, _dead_letters())
    config = str(_config(tmp_path))
    assert main(["tail", "-c", config, "--deadletter"]) == 0
    ingest, delivery = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert (ingest["origin"], ingest["reason"], ingest["error"]) == (
        "ingest",
        "malformed_json",
        "not valid JSON",
    )
    assert ingest["value"] == "{nope"
    assert (delivery["origin"], delivery["reason"], delivery["subscriber"]) == (
        "delivery",
        "delivery_exhausted",
        "crm",
    )
    assert delivery["error"] == "HTTP 500: nope" and delivery["value"]["id"] == "e1"
    assert delivery["headers"]["relay-last-status"] == "500"
    assert main(["tail", "-c", config, "--deadletter", "--subscriber", "crm"]) == 0
    [only] = capsys.readouterr().out.splitlines()
    assert json.loads(only)["subscriber"] == "crm"


def test_tail_refuses_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(_config(tmp_path))
    assert main(["tail", "-c", config]) == 1
    assert "no embedded log yet" in capsys.readouterr().err
    _publish(tmp_path, [Record("chat.events", EVENT)])
    assert main(["tail", "-c", config, "--partition", "3"]) == 1
    assert "one partition" in capsys.readouterr().err
    assert main(["tail", "-c", config, "--subscriber", "crm"]) == 2
    assert main(["tail", "-c", config, "--deadletter", "--topic", "chat.events"]) == 1
    assert "leave out --topic" in capsys.readouterr().err


def test_tail_follow_prints_what_arrives_later(tmp_path: Path) -> None:
    _publish(tmp_path, [Record("chat.events", b'{"n":1}')])
    process = subprocess.Popen(
        [sys.executable, "-m", "relay", "tail", "-c", str(_config(tmp_path)), "--follow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        assert process.stdout.readline() == b'{"n":1}\n'
        threading.Timer(0.2, _publish, (tmp_path, [Record("chat.events", b'{"n":2}')])).start()
        assert process.stdout.readline() == b'{"n":2}\n'
        assert process.poll() is None  # still following
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_tail_ends_cleanly_when_the_reader_goes_away(tmp_path: Path) -> None:
    value = b'{"padding":"' + b"x" * 200 + b'"}'
    _publish(tmp_path, [Record("chat.events", value)] * 2000)
    process = subprocess.Popen(
        [sys.executable, "-m", "relay", "tail", "-c", str(_config(tmp_path)), "--limit", "2000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline() == value + b"\n"
    time.sleep(0.2)  # it is now blocked on a full pipe
    process.stdout.close()  # like `| head -1` exiting
    assert process.wait(timeout=10) == 0
    assert process.stderr.read() == b""


def test_tail_last_starts_near_the_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _publish(
        tmp_path,
        [Record("chat.events", f'{{"n":{n}}}'.encode()) for n in range(5)]
        + [Record("other", b"x")],
    )
    config = str(_config(tmp_path))
    assert main(["tail", "-c", config, "--last", "2"]) == 0
    assert capsys.readouterr().out == '{"n":3}\n{"n":4}\n'
    assert main(["tail", "-c", config, "-n", "9"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 5
    assert main(["tail", "-c", config, "-n", "0"]) == 0
    assert capsys.readouterr().out == ""
