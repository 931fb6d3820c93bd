"""The offline subcommands: `relay normalize`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from relay.cli import main


def test_normalize_prints_json_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    payload = {
        "instanceId": "i",
        "status": "READ",
        "ids": ["a", "b"],
        "momment": 1714651200000,
        "phone": "5544999999999",
        "type": "MessageStatusCallback",
    }
    path = tmp_path / "status.json"
    path.write_text(json.dumps(payload))
    code = main(
        [
            "normalize",
            str(path),
            "--provider",
            "plugchat",
            "--kind",
            "messageStatus",
            "--source",
            "pc",
        ]
    )
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["data"]["message"]["id"] for e in events] == ["a", "b"]
    assert {e["source"] for e in events} == {"relay/pc"}


def test_normalize_explains_what_it_cannot_map(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"event": "mystery"}')
    assert main(["normalize", str(path), "--provider", "chatwoot"]) == 1
    assert "unknown_event" in capsys.readouterr().err
    path.write_text("{nope")
    assert main(["normalize", str(path), "--provider", "chatwoot"]) == 1
    assert "not valid JSON" in capsys.readouterr().err
    assert main(["normalize", str(path), "--provider", "plugchat"]) == 2
    assert "--kind" in capsys.readouterr().err


def test_normalize_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["normalize", "/no/such/file.json", "--provider", "chatwoot"]) == 1
    assert "cannot read" in capsys.readouterr().err
