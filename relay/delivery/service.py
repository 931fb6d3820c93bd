"""Runs one worker per configured subscriber, each isolated from the others and from ingest."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from relay.bus import Bus
from relay.config import Config, Subscriber
from relay.delivery.sender import Sender
from relay.delivery.sources import EmbeddedSource, KafkaSource, Source, SourceBusy
from relay.delivery.worker import FETCH_WAIT_SECONDS, DeadLetters, SubscriberWorker

log = structlog.get_logger("relay.delivery")
DEFAULT_GRACE_SECONDS = 5.0
STANDBY_POLL_SECONDS = 2.0


def group_id(subscriber: Subscriber) -> str:
    return f"relay.sub.{subscriber.name}"


def subscription_source(config: Config, subscriber: Subscriber) -> Source:
    topics = subscriber.topic_list(config.topics.events)
    if config.kafka is not None:
        return KafkaSource(config.kafka, group_id(subscriber), topics, subscriber.start_from)
    return EmbeddedSource(config.data_path, group_id(subscriber), topics, subscriber.start_from)


class DeliveryService:
    """One supervised worker per subscriber; subscribers can be added, changed or removed live."""

    def __init__(self, config: Config, bus: Bus) -> None:
        self.config = config
        self.dead_letters = DeadLetters(bus, config.topics.deadletter)
        self.workers: dict[str, SubscriberWorker] = {}
        self._tasks: dict[str, asyncio.Task[object]] = {}

    def _new_worker(self, subscriber: Subscriber) -> SubscriberWorker:
        worker = SubscriberWorker(
            subscriber,
            subscription_source(self.config, subscriber),
            Sender(subscriber),
            self.dead_letters,
        )
        self.workers[subscriber.name] = worker
        return worker

    def _launch(self, subscriber: Subscriber) -> None:
        task = asyncio.create_task(self._supervise(subscriber), name=subscriber.name)
        self._tasks[subscriber.name] = task

    async def start(self) -> None:
        for subscriber in self.config.subscribers:
            self._launch(subscriber)
        if self._tasks:
            log.info("delivery_started", subscribers=sorted(self._tasks))

    async def _supervise(self, subscriber: Subscriber) -> object:
        """A worker that fails (broker gone at start, say) is rebuilt; others carry on."""
        delay = 1.0
        standing_by = False
        while True:
            try:
                return await self._new_worker(subscriber).run()
            except asyncio.CancelledError:
                raise
            except SourceBusy as exc:
                if not standing_by:
                    log.info("subscriber_standby", subscriber=subscriber.name, reason=str(exc))
                    standing_by = True
                await asyncio.sleep(STANDBY_POLL_SECONDS)
            except Exception as exc:
                log.error(
                    "subscriber_failed",
                    subscriber=subscriber.name,
                    error=f"{type(exc).__name__}: {exc}",
                    restart_in=delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)

    async def _stop(self, names: list[str], grace: float) -> None:
        tasks = {name: self._tasks.pop(name) for name in names if name in self._tasks}
        for name in tasks:
            worker = self.workers.get(name)
            if worker is not None:
                worker.stop_reading(grace)
        if not tasks:
            return
        pending: set[asyncio.Task[object]] = set(tasks.values())
        if grace > 0:
            _, pending = await asyncio.wait(pending, timeout=grace + 2 * FETCH_WAIT_SECONDS)
        for task in pending:
            task.cancel()
        for task in tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def stop(self, grace: float = DEFAULT_GRACE_SECONDS) -> None:
        """Stop reading, let in-flight deliveries finish within ``grace``, commit watermarks.

        Whatever is still in flight after that is cancelled and delivered again after the
        restart (at-least-once; the event id stays the same).
        """
        await self._stop(list(self._tasks), grace)

    async def reconcile(self, config: Config, grace: float = DEFAULT_GRACE_SECONDS) -> None:
        """Apply a new configuration: stop removed or changed subscribers, start new ones.

        Each subscriber's position lives in its consumer group, so a changed subscriber
        resumes where it stopped.
        """
        wanted = {s.name: s for s in config.subscribers}
        current = {s.name: s for s in self.config.subscribers}
        stale = [name for name in current if wanted.get(name) != current[name]]
        await self._stop(stale, grace)
        for name in set(current) - set(wanted):
            self.workers.pop(name, None)
        self.config = config
        for name, subscriber in wanted.items():
            if name not in self._tasks:
                self._launch(subscriber)
        if stale or set(wanted) != set(current):
            log.info("delivery_reconciled", subscribers=sorted(wanted), restarted=sorted(stale))
