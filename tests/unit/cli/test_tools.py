"""The offline subcommands: `relay normalize`, `relay replay`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from relay.bus.embedded import EmbeddedLog
from relay.cli import main
from tests.factories import chat_event, records


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


def replay_config(tmp_path: Path) -> str:
    """Two records on an embedded log, one subscriber that refuses every connection."""

    async def publish() -> None:
        log = EmbeddedLog(tmp_path)
        await log.start()
        try:
            await log.publish(records("chat.events", [chat_event(1, 1), chat_event(1, 2)]))
        finally:
            await log.close()

    asyncio.run(publish())
    path = tmp_path / "relay.yaml"
    path.write_text(
        f"data_dir: {tmp_path}\nsubscribers:\n"
        "  - {name: crm, url: 'http://127.0.0.1:9/', retry: {max_attempts: 1}}\n"
    )
    return str(path)


def test_replay_starts_where_the_user_said(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = replay_config(tmp_path)
    replay = ["replay", "--config", config, "--subscriber", "crm"]
    assert main([*replay, "--from-offset", "2"]) == 3  # the second record, dead-lettered again
    assert "replayed to crm: 0 delivered, 1 dead-lettered" in capsys.readouterr().out
    assert main([*replay, "--since", "2999-01-01T00:00:00Z"]) == 0  # nothing that late
    assert "0 delivered, 0 dead-lettered" in capsys.readouterr().out
    assert main([*replay, "--since", "1h"]) == 3
    assert "0 delivered, 2 dead-lettered" in capsys.readouterr().out


def test_replay_refuses_a_start_it_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = replay_config(tmp_path)
    replay = ["replay", "--config", config, "--subscriber", "crm"]
    assert main([*replay, "--from-offset", "-1"]) == 1
    assert capsys.readouterr().err == (
        "relay: --from-offset: an offset must be 0 or more (got -1)\n"
    )
    assert main([*replay, "--since", "last tuesday"]) == 1
    assert "--since: expected a time like" in capsys.readouterr().err
    assert main(replay) == 1
    assert "say where to start" in capsys.readouterr().err
