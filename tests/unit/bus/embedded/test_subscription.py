"""The embedded log's subscription: one deliverer per consumer (the others stand by).
What every Subscription promises is in ``bus/test_base.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.bus import SubscriptionBusy
from relay.bus.embedded import EmbeddedLog, EmbeddedSubscription


async def test_one_embedded_reader_per_consumer_the_next_stands_by(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path)
    await log.start()
    first = EmbeddedSubscription(tmp_path, "c", ["a"], "earliest")
    await first.start()
    try:
        with pytest.raises(SubscriptionBusy):
            await EmbeddedSubscription(tmp_path, "c", ["a"], "earliest").start()
        other = EmbeddedSubscription(tmp_path, "d", ["a"], "earliest")
        await other.start()  # another consumer is not held back
        await other.close()
    finally:
        await first.close()
        await log.close()
