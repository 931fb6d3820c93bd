"""The bus: where records become durable, and where readers read them back. Kafka, or the
embedded log on local disk; both directions of each live here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from relay.bus.base import (
    Bus,
    BusError,
    BusRefused,
    FromOffset,
    Headers,
    Item,
    PublishProbe,
    RangeStart,
    Record,
    RecordTooLarge,
    Revoked,
    Since,
    StartFrom,
    Stream,
    Subscription,
    SubscriptionBusy,
)

if TYPE_CHECKING:  # relay.config imports the providers, which import relay.deadletters
    from relay.config import Config, Subscriber

__all__ = [
    "Bus",
    "BusError",
    "BusRefused",
    "BusRole",
    "FromOffset",
    "Headers",
    "Item",
    "PublishProbe",
    "RangeStart",
    "Record",
    "RecordTooLarge",
    "Revoked",
    "Since",
    "StartFrom",
    "Stream",
    "Subscription",
    "SubscriptionBusy",
    "group_id",
    "open_bus",
    "open_range",
    "subscribe",
]

BusRole = Literal["all", "ingress", "delivery", "replay"]
"""Who opens the bus: the three ``relay serve --role`` values, and ``relay replay``."""

# The transports are imported where they are chosen, so aiokafka loads only when Kafka is
# configured.


def open_bus(config: Config, role: BusRole = "all") -> Bus:
    """Kafka behind an on-disk spool, or the embedded log when no Kafka is configured."""
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


def group_id(subscriber: Subscriber) -> str:
    """The subscriber's consumer group on Kafka, its consumer name on the embedded log."""
    return f"relay.sub.{subscriber.name}"


def subscribe(config: Config, subscriber: Subscriber, anchor_ms: int | None = None) -> Subscription:
    """The subscriber's live read, resuming at its committed position.

    ``anchor_ms``: the subscriber's first start, where ``start_from: latest`` begins.
    """
    topics = subscriber.topic_list(config.topics.events)
    group, start = group_id(subscriber), subscriber.start_from
    if config.kafka is not None:
        from relay.bus.kafka.consumer import KafkaSubscription

        return KafkaSubscription(config.kafka, group, topics, start, anchor_ms)
    from relay.bus.embedded import EmbeddedSubscription

    return EmbeddedSubscription(config.data_path, group, topics, start, anchor_ms=anchor_ms)


def open_range(
    config: Config, topics: Sequence[str], consumer: str, start: RangeStart
) -> Subscription:
    """A bounded read from ``start`` up to the end seen at start; commits nothing.

    ``consumer`` names the reader on the embedded log (Kafka reads without a group).
    """
    if config.kafka is not None:
        from relay.bus.kafka.consumer import KafkaRange

        return KafkaRange(config.kafka, topics, start)
    from relay.bus.embedded import EmbeddedSubscription

    return EmbeddedSubscription(
        config.data_path, consumer, topics, "earliest", range_start=start, bounded=True
    )
