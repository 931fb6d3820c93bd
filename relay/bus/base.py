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

    async def publish(self, records: Sequence[Record]) -> None: ...

    def ready(self) -> bool: ...
