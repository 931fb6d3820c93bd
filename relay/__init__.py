"""relay: chat-platform webhooks in, canonical CloudEvents on Kafka, out to HTTP subscribers."""

__version__ = "0.1.0"
