from __future__ import annotations

import json
from pathlib import Path

import pytest

from relay.cli import main

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "config" / "relay.example.yaml"


def test_check_prints_the_routing_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--config", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "configuration OK" in out
    assert "chat.messages" in out and "chat.attendance" in out
    assert "(default)" in out and "chat.events" in out
    assert "/v1/hooks/plugchat/{kind}" in out
    assert "dev-nexloo-token" not in out  # secrets are never printed


def test_check_reports_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("routes:\n  - {name: a, topic: t}\n  - {name: b, topic: 3}\n")
    assert main(["check", "--config", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err == "relay: routes[1].topic: expected str, got int\n"


def test_check_without_config(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RELAY_CONFIG", raising=False)
    assert main(["check"]) == 1
    assert "RELAY_CONFIG" in capsys.readouterr().err


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


def test_check_lists_subscribers_without_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "relay.yaml"
    config.write_text(
        "subscribers:\n"
        "  - {name: crm, url: 'https://user:pw@crm.example.com/hook?key=s3cret',\n"
        "     secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, match: {type: chat.message.*}}\n"
    )
    assert main(["check", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "crm" in out and "https://crm.example.com/hook" in out and "chat.message.*" in out
    assert "s3cret" not in out and "pw" not in out and "whsec_" not in out


def test_help_describes_commands_and_options(capsys: pytest.CaptureFixture[str]) -> None:
    for command, expected in (
        (["replay", "--help"], "3 when some were"),
        (["serve", "--help"], "ingress: hooks only"),
        (["check", "--help"], "--strict"),
        (["tail", "--help"], "--deadletter"),
    ):
        with pytest.raises(SystemExit) as exited:
            main(command)
        assert exited.value.code == 0
        assert expected in " ".join(capsys.readouterr().out.split()), command


def test_check_tables_have_no_trailing_spaces(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--config", str(EXAMPLE)]) == 0
    assert all(line == line.rstrip() for line in capsys.readouterr().out.splitlines())


def test_admin_port_needs_admin_listen(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "relay.yaml"
    config.write_text(f"data_dir: {tmp_path}\n")
    assert main(["serve", "--config", str(config), "--admin-port", "9090"]) == 2
    assert "--admin-port moves admin.listen" in capsys.readouterr().err
