"""What the admin API and the console can do, in one place: look up, redrive, replay.

Both front ends call these; neither touches the index, the bus or delivery directly.
Nothing returned carries a secret: subscriber URLs lose their credentials and query
values, signing secrets and headers are never read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import msgspec
import structlog

from relay import units
from relay.bus import Item
from relay.bus.memory import GivenItems
from relay.cloudevents import from_record, structured
from relay.config import Config, Subscriber
from relay.delivery.sender import Sender
from relay.delivery.service import DeliveryService, UnknownSubscriber
from relay.delivery.worker import SubscriberWorker
from relay.index import Index, Indexer, RecordReader
from relay.index.reader import Place
from relay.index.store import DeadLetterRow, Filters, Page
from relay.metrics import REQUESTS
from relay.routing import Matcher
from relay.urls import masked

log = structlog.get_logger("relay.admin")

STATS_WINDOW_MS = 5 * 60_000
RAW_SHOWN_BYTES = 256 * 1024
MAX_REDRIVE = 10_000
_json = msgspec.json.Decoder()


class NotHere(Exception):
    """This process cannot answer that (no index, or it does not deliver)."""


class NotFound(Exception):
    code = "not_found"


class NoSuchSubscriber(NotFound):
    code = "unknown_subscriber"


class BadRequest(Exception):
    pass


def _as_item(record: Item, number: int) -> Item:
    """A record read back by its place, numbered for a one-off delivery (redrive, replay)."""
    return msgspec.structs.replace(record, stream=("redrive", 0, 0), offset=number)


class Operations:
    def __init__(
        self,
        config: Callable[[], Config],
        delivery: DeliveryService | None,
        indexer: Indexer | None,
    ) -> None:
        """``config``: the running configuration (it changes on reload)."""
        self._config = config
        self.delivery = delivery
        self.indexer = indexer
        self.reader = RecordReader(config())
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def config(self) -> Config:
        return self._config()

    @property
    def index(self) -> Index:
        if self.indexer is None:
            raise NotHere("this process keeps no index (it runs --role ingress)")
        return self.indexer.index

    def _delivery(self) -> DeliveryService:
        if self.delivery is None:
            raise NotHere("this process does not deliver (it runs --role ingress)")
        return self.delivery

    def subscriber(self, name: str) -> Subscriber:
        for subscriber in self.config.subscribers:
            if subscriber.name == name:
                return subscriber
        raise NotFound(f"no subscriber named {name!r}")

    # --- reading ------------------------------------------------------------------------

    async def search(self, filters: Filters, limit: int, cursor: str | None) -> Page:
        index = self.index
        try:
            return await asyncio.to_thread(index.search, filters, limit, cursor)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None

    async def event(self, event_id: str) -> dict[str, Any]:
        index = self.index
        row = await asyncio.to_thread(index.event, event_id)
        if row is None:
            raise NotFound(f"no event {event_id!r} in the index")
        record = await self.reader.read(row.topic, row.partition, row.offset)
        raw = await asyncio.to_thread(index.raw_ref, event_id)
        raw_record = (
            await self.reader.read(raw.topic, raw.partition, raw.offset)
            if raw is not None
            else None
        )
        attempts = await asyncio.to_thread(index.attempts, event_id)
        deadletters = await asyncio.to_thread(index.deadletters, event_id=event_id)
        return {
            "indexed": row,
            "event": _json.decode(structured(record.value, dict(record.headers)))
            if record is not None
            else None,
            "raw": None
            if raw is None
            else {
                "topic": raw.topic,
                "partition": raw.partition,
                "offset": raw.offset,
                "request_id": raw.request_id,
                "received_ms": raw.received_ms,
                "matched_by": raw.matched_by,
                "content_type": _header(raw_record, "content-type"),
                "body": None
                if raw_record is None
                else raw_record.value[:RAW_SHOWN_BYTES].decode("utf-8", "replace"),
                "truncated": raw_record is not None and len(raw_record.value) > RAW_SHOWN_BYTES,
            },
            "attempts": attempts,
            "deadletters": deadletters,
        }

    async def deadletters(
        self, subscriber: str | None = None, since_ms: int | None = None, limit: int = 200
    ) -> list[DeadLetterRow]:
        index = self.index
        return await asyncio.to_thread(
            lambda: index.deadletters(subscriber=subscriber, since_ms=since_ms, limit=limit)
        )

    async def redelivered(self, rows: Sequence[DeadLetterRow]) -> set[tuple[str, str]]:
        """(event id, subscriber) of dead letters delivered after they were written."""
        index = self.index
        return await asyncio.to_thread(index.redelivered, list(rows))

    async def subscribers(self) -> list[dict[str, Any]]:
        now = units.now_ms()
        stats: dict[str, dict[str, Any]] = {}
        if self.indexer is not None:
            stats = await asyncio.to_thread(self.index.subscriber_stats, now - STATS_WINDOW_MS)
        delivery = self.delivery
        answer = []
        for subscriber in self.config.subscribers:
            name = subscriber.name
            worker = delivery.workers.get(name) if delivery is not None else None
            disabled = delivery.disabled.get(name) if delivery is not None else None
            recent = stats.get(name, {})
            answer.append(
                {
                    "name": name,
                    "url": masked(subscriber.url),
                    "topics": subscriber.topic_list(self.config.topics.events),
                    "breaker": worker.sender.breaker.state if worker is not None else None,
                    "disabled": disabled is not None,
                    "disabled_reason": disabled.reason if disabled is not None else None,
                    "disabled_status": disabled.status if disabled is not None else None,
                    "lag": worker.lag if worker is not None else None,
                    "delivered": recent.get("delivered", 0),
                    "failed": recent.get("failed", 0),
                    "p50_ms": recent.get("p50_ms"),
                    "p99_ms": recent.get("p99_ms"),
                    "window_seconds": STATS_WINDOW_MS // 1000,
                }
            )
        return answer

    async def sparkline(self, name: str, minutes: int = 30) -> list[tuple[int, int]]:
        index = self.index
        now = units.now_ms()
        return await asyncio.to_thread(
            index.sparkline, name, now - minutes * 60_000, minutes, 60_000
        )

    async def sources(self) -> list[dict[str, Any]]:
        last_seen: dict[str, int] = {}
        if self.indexer is not None:
            last_seen = await asyncio.to_thread(self.index.sources)
        counts: dict[str, dict[str, int]] = {}
        for metric in REQUESTS.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    source = sample.labels["source"]
                    outcome = sample.labels["outcome"]
                    counts.setdefault(source, {})[outcome] = int(sample.value)
        return [
            {
                "name": name,
                "provider": source.provider,
                "requests": counts.get(name, {}),
                "last_seen_ms": last_seen.get(name),
            }
            for name, source in sorted(self.config.sources.items())
        ]

    # --- acting -------------------------------------------------------------------------

    async def redrive(
        self, name: str, ids: Sequence[str] | None = None, since_ms: int | None = None
    ) -> int:
        """Redeliver this subscriber's dead letters (by event id, or written since a time);
        each event once, and only those not delivered since. Returns how many go out."""
        subscriber = self.subscriber(name)
        delivery = self._delivery()
        index = self.index
        if ids is None and since_ms is None:
            raise BadRequest('give "ids": [...] or "since": "<RFC 3339>"')
        rows = await asyncio.to_thread(
            lambda: index.deadletters(
                subscriber=name, ids=ids, since_ms=since_ms, limit=MAX_REDRIVE
            )
        )
        done = await self.redelivered(rows)
        chosen: dict[str, DeadLetterRow] = {}
        for row in rows:  # newest first: keep one per event
            if row.event_id and row.event_id not in chosen and (row.event_id, name) not in done:
                chosen[row.event_id] = row
        places = [(r.topic, r.partition, r.offset) for r in reversed(chosen.values())]
        self._spawn(self._redrive(delivery, subscriber, places), f"redrive-{name}")
        return len(places)

    async def _redrive(
        self, delivery: DeliveryService, subscriber: Subscriber, places: list[Place]
    ) -> None:
        """In the background: reading many dead letters back from Kafka takes a while."""
        records = await self.reader.read_many(places)
        items = [_as_item(r, i) for i, r in enumerate(records) if r is not None]
        if len(items) < len(places):
            log.warning("redrive_records_gone", missing=len(places) - len(items))
        await self._send(delivery, subscriber, items, "redrive")

    async def replay(self, event_id: str, name: str) -> None:
        subscriber = self.subscriber(name)
        delivery = self._delivery()
        row = await asyncio.to_thread(self.index.event, event_id)
        if row is None:
            raise NotFound(f"no event {event_id!r} in the index")
        record = await self.reader.read(row.topic, row.partition, row.offset)
        if record is None:
            raise NotFound(f"event {event_id!r} is no longer on the bus (retention)")
        event = from_record(record.value, record.headers)
        if not Matcher.compile(subscriber.match)(event):
            raise BadRequest(f"event {event_id!r} does not match subscriber {name!r}")
        self._spawn(
            self._send(delivery, subscriber, [_as_item(record, 0)], "replay"), f"replay-{name}"
        )

    def _spawn(self, work: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(
        self, delivery: DeliveryService, subscriber: Subscriber, items: list[Item], why: str
    ) -> None:
        if not items:
            return
        worker = SubscriberWorker(
            subscriber,
            GivenItems(items),
            Sender(subscriber, tracing=delivery.tracing),  # in the events' own traces
            delivery.dead_letters,
            attempts=delivery.attempt_log,
            replay=True,
        )
        log.info(why, subscriber=subscriber.name, events=len(items))
        stats = await worker.run()
        log.info(f"{why}_done", subscriber=subscriber.name, **msgspec.structs.asdict(stats))

    async def enable(self, name: str) -> bool:
        try:
            return await self._delivery().enable(name)
        except UnknownSubscriber as exc:
            raise NoSuchSubscriber(str(exc)) from None

    async def disable(self, name: str) -> bool:
        self.subscriber(name)
        try:
            return await self._delivery().disable(name)
        except UnknownSubscriber as exc:
            raise NotFound(str(exc)) from None

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _header(record: Item | None, name: str) -> str | None:
    if record is None:
        return None
    value = dict(record.headers).get(name)
    return value.decode("utf-8", "replace") if value else None
