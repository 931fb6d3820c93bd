"""The bus: where records become durable. Kafka, or the embedded log on local disk."""

from relay.bus.base import Bus, BusError, BusRefused, Record, RecordTooLarge

__all__ = ["Bus", "BusError", "BusRefused", "Record", "RecordTooLarge"]
