"""Kafka, both directions: the producer (group commit), the consumers (a subscriber's group,
a replay's bounded range), the connection options every client shares, the start-up probe."""

from relay.bus.kafka.producer import KafkaBus

__all__ = ["KafkaBus"]
