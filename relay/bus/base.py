from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

Headers = tuple[tuple[str, bytes], ...]


class Record(msgspec.Struct, frozen=True):
    """One message for one topic: what Kafka calls a record."""

    topic: str
    value: bytes
    key: bytes | None = None
    headers: Headers = ()


class PublishProbe:
    """What a traced ``publish`` learns from the bus (tracing only; None otherwise).

    ``placed``: (topic, partition) of each record, as the bus placed it (Kafka only);
    ``sent_at``: ``time.monotonic()`` when the last batch holding one of the records left for
    the broker or the disk, so the time before it is the wait for the group commit;
    ``spooled``: Kafka was away and the records went to the spool.
    """

    __slots__ = ("placed", "sent_at", "spooled")

    def __init__(self) -> None:
        self.placed: list[tuple[str, int]] = []
        self.sent_at: float | None = None
        self.spooled = False


class BusError(Exception):
    """The bus could not make the records durable; nothing may be acknowledged."""


class RecordTooLarge(BusError):
    """A record the bus will never accept, however often it is retried (answer 413)."""


class BusRefused(BusError):
    """The bus refuses relay's settings (a certificate, a password): waiting will not help,
    so relay stops instead of spooling."""


class Bus(Protocol):
    """Something that holds records durably. ``publish`` returns only once it does."""

    name: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(
        self, records: Sequence[Record], probe: PublishProbe | None = None
    ) -> None: ...

    def ready(self) -> bool: ...
