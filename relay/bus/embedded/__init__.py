"""The embedded log, both directions: the bus when no Kafka is configured, in SQLite under
``data_dir``. ``log`` holds the file (schema, writer thread, reads, trims), ``subscription``
a consumer's read with its stored position."""

from relay.bus.embedded.log import (
    LOG_FILE,
    STREAM,
    EmbeddedLog,
    connect,
    delete_through,
    depth,
    make_private,
    offset_before_last,
    read,
    read_at,
    read_only,
    select,
)
from relay.bus.embedded.subscription import EmbeddedSubscription

__all__ = [
    "LOG_FILE",
    "STREAM",
    "EmbeddedLog",
    "EmbeddedSubscription",
    "connect",
    "delete_through",
    "depth",
    "make_private",
    "offset_before_last",
    "read",
    "read_at",
    "read_only",
    "select",
]
