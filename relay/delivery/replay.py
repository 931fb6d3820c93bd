"""Redeliver to one subscriber: from a time or an offset, or what was dead-lettered for it.

Replay reads a bounded range (up to the end seen when it starts), delivers through the
same sender, order and dead-letter rules as live delivery, and commits nothing: the
subscriber's live position is untouched.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import msgspec
import structlog

from relay.bus import (
    FromOffset,
    Item,
    RangeStart,
    Revoked,
    Since,
    Stream,
    Subscription,
    group_id,
    open_bus,
    open_range,
)
from relay.config import Config, Subscriber
from relay.deadletters import DeadLetters, made_for
from relay.delivery.sender import Sender
from relay.delivery.tally import Stats
from relay.delivery.worker import SubscriberWorker
from relay.units import seconds

if TYPE_CHECKING:
    from relay.telemetry.otel import Tracing

log = structlog.get_logger("relay.replay")


class ReplayError(Exception):
    pass


def parse_since(text: str, now: datetime | None = None) -> int:
    """An RFC 3339 time, or a duration ago (``2h``, ``30m``), as epoch milliseconds."""
    current = now or datetime.now(UTC)
    try:
        return int((current.timestamp() - seconds(text)) * 1000)
    except ValueError:
        pass
    try:
        # RFC 3339 allows a lower-case "t" and "z"; fromisoformat only the upper-case "Z"
        moment = datetime.fromisoformat(text.strip().upper())
    except ValueError:
        raise ReplayError(
            f"--since: expected a time like 2024-05-02T12:00:00Z or 2h, got {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def range_start(since: str | None, from_offset: int | None) -> RangeStart | None:
    """Where the user said to start (``--since`` or ``--from-offset``), or None."""
    if since:
        return Since(parse_since(since))
    if from_offset is None:
        return None
    try:
        return FromOffset(from_offset)
    except ValueError as exc:
        raise ReplayError(f"--from-offset: {exc}") from None


class ForSubscriber:
    """Only the dead letters a subscriber's deliveries produced."""

    on_revoked: Revoked | None = None  # a bounded read: nothing moves

    def __init__(self, inner: Subscription, subscriber: str) -> None:
        self.inner = inner
        self.subscriber = subscriber.encode()

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def fetch(self, max_records: int, wait: float) -> list[Item] | None:
        items = await self.inner.fetch(max_records, wait)
        if items is None:
            return None
        return [i for i in items if made_for(i.headers, self.subscriber)]

    async def commit(self, positions: dict[Stream, int]) -> None:
        return None

    async def backlog(self) -> int:
        return await self.inner.backlog()


def _find(config: Config, name: str) -> Subscriber:
    for subscriber in config.subscribers:
        if subscriber.name == name:
            return subscriber
    known = ", ".join(s.name for s in config.subscribers) or "none configured"
    raise ReplayError(f"no subscriber named {name!r} (known: {known})")


def replay_subscription(
    config: Config, subscriber: Subscriber, start: RangeStart | None, *, deadletter: bool = False
) -> Subscription:
    """``start``: None only with ``deadletter``, which then reads all its dead letters."""
    topics = (
        [config.topics.deadletter] if deadletter else subscriber.topic_list(config.topics.events)
    )
    reading = open_range(config, topics, f"{group_id(subscriber)}.replay", start or FromOffset(0))
    return ForSubscriber(reading, subscriber.name) if deadletter else reading


async def replay(
    config: Config,
    subscriber_name: str,
    start: RangeStart | None = None,
    *,
    deadletter: bool = False,
    tracing: Tracing | None = None,
) -> Stats:
    """``tracing``: each redelivery's attempts are spans in its event's original trace."""
    subscriber = _find(config, subscriber_name)
    if not deadletter and start is None:
        raise ReplayError("say where to start: --since TIME, --from-offset N or --deadletter")
    if deadletter and isinstance(start, FromOffset):
        raise ReplayError("--deadletter takes --since, not --from-offset")
    bus = open_bus(config, role="replay")
    await bus.start()
    try:
        reading = replay_subscription(config, subscriber, start, deadletter=deadletter)
        worker = SubscriberWorker(
            subscriber,
            reading,
            Sender(subscriber, tracing=tracing),
            DeadLetters(bus, config.topics.deadletter),
        )
        stats = await worker.run()
    finally:
        await bus.close()
    log.info("replay_done", subscriber=subscriber.name, **msgspec.structs.asdict(stats))
    return stats
