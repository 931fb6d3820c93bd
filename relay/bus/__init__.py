"""The bus: where records become durable. Kafka, or the embedded log on local disk."""

from __future__ import annotations

from typing import Literal

from relay.bus.base import Bus, BusError, BusRefused, Record, RecordTooLarge
from relay.config import Config

__all__ = ["Bus", "BusError", "BusRefused", "BusRole", "Record", "RecordTooLarge", "open_bus"]

BusRole = Literal["all", "ingress", "delivery", "replay"]
"""Who opens the bus: the three ``relay serve --role`` values, and ``relay replay``."""


def open_bus(config: Config, role: BusRole = "all") -> Bus:
    """Kafka behind an on-disk spool, or the embedded log when no Kafka is configured."""
    # imported here so aiokafka loads only when Kafka is configured
    kafka = config.kafka
    if kafka is None:
        from relay.bus.embedded import EmbeddedLog

        return EmbeddedLog(config.data_path, retention=config.retention or None)
    from relay.bus.kafka import KafkaBus
    from relay.bus.spool import SpooledBus

    spool_after = kafka.spool_after
    return SpooledBus(
        lambda: KafkaBus(kafka, delivery_timeout=spool_after),
        config.data_path,
        spool_after=spool_after,
        max_bytes=kafka.spool_max_bytes,
        max_record_bytes=kafka.max_record_bytes,
        # processes (workers, other roles) may share data_dir: each claims a spool of its own
        claim_base="spool" if role in ("all", "ingress") else f"spool-{role}",
    )
