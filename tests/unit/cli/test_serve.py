"""`relay serve`: what it refuses before it starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.cli import main


def test_admin_port_needs_admin_listen(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "relay.yaml"
    config.write_text(f"data_dir: {tmp_path}\n")
    assert main(["serve", "--config", str(config), "--admin-port", "9090"]) == 2
    assert "--admin-port moves admin.listen" in capsys.readouterr().err
