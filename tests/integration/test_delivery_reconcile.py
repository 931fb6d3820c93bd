"""A reload's ``delivery_reconciled`` line says what it did to each subscriber: started,
stopped or restarted (the review's P4: adding one logged only ``restarted: []``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from relay.bus.embedded import EmbeddedLog
from relay.delivery.service import DeliveryService
from tests.support import make_config

pytestmark = pytest.mark.integration


def _config(tmp_path: Path, *subscribers: str) -> str:
    lines = "".join(f"  - {{name: {s}, url: 'http://127.0.0.1:9/{s}'}}\n" for s in subscribers)
    return (
        f"data_dir: {tmp_path}\nsubscribers:\n{lines}" if subscribers else f"data_dir: {tmp_path}\n"
    )


async def test_the_reconciled_line_names_started_stopped_and_restarted(tmp_path: Path) -> None:
    config = make_config(_config(tmp_path, "keep", "change", "drop"))
    bus = EmbeddedLog(config.data_path)
    await bus.start()
    service = DeliveryService(config, bus)
    await service.start()
    try:
        changed = _config(tmp_path, "keep", "change", "new").replace("/change'", "/moved'")
        with capture_logs() as logs:
            await service.reconcile(make_config(changed), grace=0.1)
    finally:
        await service.stop(grace=0.1)
        await bus.close()
    [line] = [entry for entry in logs if entry["event"] == "delivery_reconciled"]
    assert line["subscribers"] == ["change", "keep", "new"]
    assert line["started"] == ["new"]
    assert line["stopped"] == ["drop"]
    assert line["restarted"] == ["change"]
