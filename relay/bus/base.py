"""The bus's vocabulary, both directions: records written, items read back, the two Protocols."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Literal, Protocol

import msgspec

Headers = tuple[tuple[str, bytes], ...]

Stream = tuple[str, int, int]
"""(topic, partition, generation) for Kafka, where the generation counts the times this
consumer was assigned the partition, so finishes of records read under an earlier
assignment never count toward a later one; one stream for the embedded log."""

StartFrom = Literal["latest", "earliest"]
"""Where a subscription that never committed begins (``subscribers[].start_from``)."""


class Since(msgspec.Struct, frozen=True):
    """A bounded read from the first record written at or after ``ms`` (epoch milliseconds)."""

    ms: int


class FromOffset(msgspec.Struct, frozen=True):
    """A bounded read from ``offset`` on (on Kafka, in each partition), never before the
    log's first record."""

    offset: int

    def __post_init__(self) -> None:
        if self.offset < 0:
            raise ValueError(f"an offset must be 0 or more (got {self.offset})")


RangeStart = Since | FromOffset
"""Where a bounded read (replay, ``open_range``) begins: said once, matched where it is read."""


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


class Item(msgspec.Struct, frozen=True):
    """One record read back from the bus, with the stream and offset it was read at."""

    stream: Stream
    offset: int
    topic: str
    key: bytes | None
    value: bytes
    headers: Headers
    timestamp_ms: int

    @property
    def partition(self) -> int:
        return self.stream[1]


class BusError(Exception):
    """The bus could not make the records durable; nothing may be acknowledged."""


class RecordTooLarge(BusError):
    """A record the bus will never accept, however often it is retried (answer 413)."""


class BusRefused(BusError):
    """The bus refuses relay's settings (a certificate, a password): waiting will not help,
    so relay stops instead of spooling."""


class SubscriptionBusy(Exception):
    """Another process holds this subscriber's position; wait and try again (standby)."""


class Bus(Protocol):
    """Something that holds records durably. ``publish`` returns only once it does."""

    name: str

    @property
    def mode(self) -> str | None:
        """How it holds records now, where it has more than one way (the spool: ``direct``
        or ``spooling``); None for a bus with one way. ``/readyz`` reports it."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish(
        self, records: Sequence[Record], probe: PublishProbe | None = None
    ) -> None: ...

    def ready(self) -> bool: ...


Revoked = Callable[[set[Stream]], Awaitable[None]]
"""Called before streams are taken away: commit what is finished, forget the rest."""


class Subscription(Protocol):
    """Records read from the bus for one reader, in order per stream.

    ``commit`` records the next offset to read per stream, so a restart resumes after the
    last finished record.
    """

    on_revoked: Revoked | None
    """Set by the reader before ``start``; called only where streams can move to another
    process (a Kafka group's rebalance), never by the embedded log or a bounded read."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def fetch(self, max_records: int, wait: float) -> list[Item] | None:
        """The next records (maybe none); None once a bounded subscription is exhausted."""
        ...

    async def commit(self, positions: dict[Stream, int]) -> None: ...

    async def backlog(self) -> int:
        """Records on the topics that were not fetched yet."""
        ...
