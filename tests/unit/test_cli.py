"""`relay` itself: the command table, every subcommand's help."""

from __future__ import annotations

import pytest

from relay.cli import main


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
