"""The embedded log, both directions: the bus when no Kafka is configured, in SQLite under
``data_dir``. ``log`` writes it (one writer thread, group commit)."""

from relay.bus.embedded.log import (
    LOG_FILE,
    EmbeddedLog,
    StoredRecord,
    connect,
    make_private,
    read,
)

__all__ = [
    "LOG_FILE",
    "EmbeddedLog",
    "StoredRecord",
    "connect",
    "make_private",
    "read",
]
