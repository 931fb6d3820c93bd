"""`relay check`: the routing table, one-line refusals, subscribers without secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.cli import main

ROOT = Path(__file__).parents[3]
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


def test_check_tables_have_no_trailing_spaces(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--config", str(EXAMPLE)]) == 0
    assert all(line == line.rstrip() for line in capsys.readouterr().out.splitlines())
