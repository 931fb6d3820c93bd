"""One subscriber's delivery loop: read, filter, deliver in per-key order, commit safely.

Events with the same key (the CloudEvent ``partitionkey``) go out one at a time, in
order; different keys go out in parallel up to ``max_in_flight``. Offsets are committed
only up to the lowest record not yet delivered or dead-lettered, so a restart
redelivers rather than skips.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import Any

import msgspec
import structlog

from relay.attempts import AttemptLog
from relay.bus import Item, Stream, Subscription
from relay.cloudevents import (
    DATA_CONTENT_TYPE,
    HTTP_CONTENT_TYPE,
    encode,
    encode_data,
    event_decoder,
    from_binary,
    head_decoder,
    http_binary_headers,
    is_binary,
)
from relay.config import Subscriber
from relay.deadletters import DeadLetters, delivery_record
from relay.delivery.breaker import STATE_VALUES
from relay.delivery.retry import AttemptFailed
from relay.delivery.sender import DeliveryResult, Sender
from relay.delivery.state import DeliveryState
from relay.delivery.tally import Stats, Tally
from relay.delivery.watermark import Watermark
from relay.events import CloudEvent, EventHead
from relay.metrics import DELIVERIES, DELIVERY_SECONDS, LIVE, SKIPPED
from relay.routing import Matcher

log = structlog.get_logger("relay.delivery")

Event = CloudEvent | EventHead
COMMIT_INTERVAL_SECONDS = 1.0
_FETCH_MAX = 500
FETCH_WAIT_SECONDS = 0.5
REVOKE_WAIT_SECONDS = 1.0


class SubscriberWorker:
    """``state`` keeps attempt counts across restarts; ``live`` workers publish gauges."""

    def __init__(
        self,
        subscriber: Subscriber,
        subscription: Subscription,
        sender: Sender,
        dead_letters: DeadLetters,
        *,
        buffer_limit: int | None = None,
        state: DeliveryState | None = None,
        live: bool = False,
        attempts: AttemptLog | None = None,
        replay: bool = False,
    ) -> None:
        self.subscriber = subscriber
        self.subscription = subscription
        self.sender = sender
        self.dead_letters = dead_letters
        self.matcher = Matcher.compile(subscriber.match)
        self._log = log.bind(subscriber=subscriber.name)
        # Only ``where`` predicates and the bare-data format need the whole event.
        self._decoder: msgspec.json.Decoder[Any] = (
            event_decoder if subscriber.match.where or subscriber.format == "data" else head_decoder
        )
        self._delivered = DELIVERIES.labels(subscriber.name, "delivered")
        self._deadlettered = DELIVERIES.labels(subscriber.name, "deadlettered")
        self._seconds = DELIVERY_SECONDS.labels(subscriber.name)
        self.attempt_log = attempts
        self._flushed_delivered = 0
        self.gone: DeliveryResult | None = None
        """Set when the endpoint answered 410 Gone: the worker stops, nothing is skipped."""
        self.buffer_limit = buffer_limit or max(256, subscriber.max_in_flight * 16)
        self.stats = Stats()
        self._tally = Tally(
            subscriber.name,
            sender.max_attempts,
            self.stats,
            state=state,
            attempt_log=attempts,
            replay=replay,
        )
        self._watermark = Watermark()
        self._queues: dict[bytes, deque[tuple[Item, Event]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._room = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = asyncio.Event()
        self._grace: float | None = None
        self._backlog = 0
        if live:
            LIVE.put("relay_consumer_lag", subscriber.name, self._lag)
            LIVE.put("relay_circuit_state", subscriber.name, self._circuit)

    @property
    def buffered(self) -> int:
        return self._watermark.outstanding

    def stop_reading(self, grace: float) -> None:
        """Read no more; give in-flight deliveries ``grace`` seconds, then cancel them."""
        self._grace = grace
        self._stopping.set()

    async def _revoked(self, streams: set[Stream]) -> None:
        """Partitions are moving to another member: commit what is finished, forget them.

        Deliveries of those streams in progress get up to ``REVOKE_WAIT_SECONDS`` to
        finish first, so fewer are delivered again by the new owner. Records still queued
        after that are delivered anyway (the new owner may deliver them too:
        at-least-once); their finishes no longer count.
        """
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(REVOKE_WAIT_SECONDS):
                while any(self._watermark.pending(stream) for stream in streams):
                    self._room.clear()
                    await self._room.wait()
        commits = {
            stream: position
            for stream in streams
            if (position := self._watermark.position(stream)) is not None
        }
        if commits:
            try:
                await self.subscription.commit(commits)
            except Exception as exc:
                self._log.warning("commit_failed", error=str(exc))
        for stream in streams:
            self._watermark.forget(stream)
        self._room.set()

    async def run(self) -> Stats:
        """Deliver until stopped or cancelled, or until a bounded subscription is exhausted."""
        self.subscription.on_revoked = self._revoked
        await self._tally.load()
        await self.sender.start()
        try:
            await self.subscription.start()
            committer = asyncio.create_task(self._commit_periodically())
            try:
                await self._read_loop()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._grace):
                        await self._idle.wait()
            finally:
                committer.cancel()
                for task in list(self._tasks):
                    task.cancel()
                await asyncio.gather(committer, *self._tasks, return_exceptions=True)
                # a periodic commit cut short by the cancel may be lost: commit every position
                await self._commit(everything=True)
                self._flush_metrics()
                await self.subscription.close()
        finally:
            await self.sender.close()
        return self.stats

    async def _read_loop(self) -> None:
        while not self._stopping.is_set():
            room = self.buffer_limit - self.buffered
            if room <= 0:
                self._room.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(FETCH_WAIT_SECONDS):
                        await self._room.wait()
                continue
            items = await self.subscription.fetch(min(room, _FETCH_MAX), FETCH_WAIT_SECONDS)
            if items is None:
                return
            for item in items:
                self._accept(item)

    def _accept(self, item: Item) -> None:
        self._watermark.track(item.stream, item.offset)
        try:
            headers = dict(item.headers) if item.headers else {}
            if is_binary(headers):
                event = from_binary(item.value, headers)
            else:
                event = self._decoder.decode(item.value)
        except Exception as exc:  # anything: too deep, wrong types, foreign bytes
            self._skip(item, "not_a_cloudevent", exc)
            return
        try:
            matched = self.matcher(event)
        except Exception as exc:  # a predicate that cannot read this event
            self._skip(item, "unmatchable", exc)
            return
        if not matched:
            self._finish(item)
            return
        key = item.key if item.key is not None else event.partitionkey.encode()
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
            task = asyncio.create_task(self._drain(key, queue))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            self._idle.clear()
        queue.append((item, event))

    def _skip(self, item: Item, reason: str, exc: BaseException) -> None:
        """A record no delivery can come of: counted, logged, committed past, never re-read."""
        self._log.warning(
            "record_skipped",
            reason=reason,
            topic=item.topic,
            offset=item.offset,
            error=f"{type(exc).__name__}: {str(exc)[:200]}",
        )
        self.stats.skipped += 1
        SKIPPED.labels(self.subscriber.name, reason).inc()
        self._finish(item)

    async def _drain(self, key: bytes, queue: deque[tuple[Item, Event]]) -> None:
        try:
            while queue:
                item, event = queue[0]
                try:
                    settled = await self._deliver(item, event)
                except Exception as exc:  # a bug must not strand this key or the watermark
                    self._log.exception("delivery_crashed", event_id=event.id)
                    settled = await self._deadletter_crash(item, event, exc)
                if not settled:  # 410: this key stops here, unfinished, for a re-enable
                    queue.clear()
                    return
                queue.popleft()
                self._finish(item)
        finally:
            if self._queues.get(key) is queue and not queue:
                del self._queues[key]
            if not self._queues:
                self._idle.set()

    async def _deadletter_crash(self, item: Item, event: Event, exc: BaseException) -> bool:
        result = DeliveryResult(delivered=False, attempts=0, error=repr(exc), reason="crashed")
        try:
            await self._deadletter(item, event, result)
        except Exception:  # even the dead letter cannot be made: skip it, loudly
            self._log.exception("deadletter_failed", event_id=event.id)
            self.stats.skipped += 1
            SKIPPED.labels(self.subscriber.name, "crashed").inc()
        return True

    async def _deliver(self, item: Item, event: Event) -> bool:
        """False when the event was neither delivered nor dead-lettered (410 Gone)."""
        extra: dict[str, str] | None = None
        structured = item.value
        if isinstance(event, CloudEvent) and item.headers and is_binary(dict(item.headers)):
            structured = encode(event)  # binary-mode record: structured over HTTP and in DLs
        if self.subscriber.format == "data":
            assert isinstance(event, CloudEvent)  # the full decoder is used for this format
            body, content_type = encode_data(event), DATA_CONTENT_TYPE
            extra = http_binary_headers(event)
        else:
            body, content_type = structured, HTTP_CONTENT_TYPE
        event_id = event.id
        tally = self._tally
        prior = tally.prior.pop(event_id, 0) if tally.prior else 0

        attempt_log = self.attempt_log
        began = time.monotonic()

        async def on_failure(
            event_id: str, attempt: int, failure: AttemptFailed, retry_in: float | None
        ) -> None:
            nonlocal began
            ended = time.monotonic()
            tally.log_attempt(event_id, attempt, ended - began, failure, retry_in)
            began = ended + (retry_in or 0.0)
            await tally.failed_attempt(event_id, attempt, failure, retry_in)

        # without an attempt log the closure is not needed: the hot path stays one call
        failed = on_failure if attempt_log is not None else tally.failed_attempt

        result = await self.sender.deliver(
            event_id,
            body,
            content_type,
            extra,
            prior_attempts=prior,
            on_failure=failed,
            traceparent=event.traceparent,
            tracestate=event.tracestate,
        )
        self._seconds.observe(result.seconds)
        if result.delivered and attempt_log is not None:
            tally.log_delivered(event_id, result, began)
        if result.delivered:
            self.stats.delivered += 1  # counted in the metrics by _flush_metrics
            if tally.counted:
                await tally.settle(event_id)
            return True
        if result.reason == "gone":
            self.gone = result
            self._log.warning(
                "subscriber_gone", event_id=event_id, status=result.status, error=result.error
            )
            self.stop_reading(0)
            return False
        await self._deadletter(item, event, result, structured)
        if tally.counted:
            await tally.settle(event_id)
        return True

    async def _deadletter(
        self, item: Item, event: Event, result: DeliveryResult, structured: bytes | None = None
    ) -> None:
        self._log.warning(
            "delivery_deadlettered",
            event_id=event.id,
            reason=f"delivery_{result.reason or 'failed'}",  # as in the relay-reason header
            attempts=result.attempts,
            status=result.status,
            error=result.error,
        )
        if structured is None and isinstance(event, CloudEvent):
            structured = encode(event)
        await self.dead_letters.publish(
            delivery_record(
                self.dead_letters.topic,
                self.subscriber.name,
                item,
                event.id,
                reason=f"delivery_{result.reason or 'failed'}",
                attempts=result.attempts,
                status=result.status,
                error=result.error,
                value=None if structured is None or structured is item.value else structured,
            )
        )
        self.stats.deadlettered += 1
        self._deadlettered.inc()

    def _finish(self, item: Item) -> None:
        self._watermark.finish(item.stream, item.offset)
        self._room.set()

    async def _commit(self, everything: bool = False) -> None:
        commits = self._watermark.take_commits(everything)
        if not commits:
            return
        try:
            await self.subscription.commit(commits)
        except Exception as exc:  # the next commit carries the same or a later position
            self._log.warning("commit_failed", error=str(exc))

    def _flush_metrics(self) -> None:
        """Successes reach the counters once a commit interval (two locked increments per
        delivery saved on the hot path); failures are counted as they happen."""
        delivered = self.stats.delivered - self._flushed_delivered
        if delivered:
            self._flushed_delivered += delivered
            self._delivered.inc(delivered)
            self._tally.counters["delivered"].inc(delivered)

    async def _commit_periodically(self) -> None:
        while True:
            await asyncio.sleep(COMMIT_INTERVAL_SECONDS)
            self._flush_metrics()
            await self._commit()
            with contextlib.suppress(Exception):
                self._backlog = await self.subscription.backlog()

    @property
    def lag(self) -> int:
        """Records not yet delivered or dead-lettered: the backlog, and what is buffered."""
        return self._backlog + self.buffered

    def _lag(self) -> list[tuple[tuple[str, ...], float]]:
        return [((self.subscriber.name,), float(self.lag))]

    def _circuit(self) -> list[tuple[tuple[str, ...], float]]:
        return [((self.subscriber.name,), STATE_VALUES[self.sender.breaker.state])]
