"""Runs one worker per configured subscriber, each isolated from the others and from ingest."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from relay.bus import Bus
from relay.config import Config, Subscriber
from relay.delivery.sender import Sender
from relay.delivery.sources import EmbeddedSource, KafkaSource, Source
from relay.delivery.worker import FETCH_WAIT_SECONDS, DeadLetters, SubscriberWorker

log = structlog.get_logger("relay.delivery")
DEFAULT_GRACE_SECONDS = 5.0


def group_id(subscriber: Subscriber) -> str:
    return f"relay.sub.{subscriber.name}"


def subscription_source(config: Config, subscriber: Subscriber) -> Source:
    topics = subscriber.topic_list(config.topics.events)
    if config.kafka is not None:
        return KafkaSource(config.kafka, group_id(subscriber), topics, subscriber.start_from)
    return EmbeddedSource(config.data_path, group_id(subscriber), topics, subscriber.start_from)


class DeliveryService:
    def __init__(self, config: Config, bus: Bus) -> None:
        self.config = config
        self.dead_letters = DeadLetters(bus, config.topics.deadletter)
        self.workers: dict[str, SubscriberWorker] = {}
        self._tasks: list[asyncio.Task[object]] = []

    def _new_worker(self, subscriber: Subscriber) -> SubscriberWorker:
        worker = SubscriberWorker(
            subscriber,
            subscription_source(self.config, subscriber),
            Sender(subscriber),
            self.dead_letters,
        )
        self.workers[subscriber.name] = worker
        return worker

    async def start(self) -> None:
        for subscriber in self.config.subscribers:
            task = asyncio.create_task(self._supervise(subscriber), name=subscriber.name)
            self._tasks.append(task)
        if self._tasks:
            log.info("delivery_started", subscribers=[s.name for s in self.config.subscribers])

    async def _supervise(self, subscriber: Subscriber) -> object:
        """A worker that fails (broker gone at start, say) is rebuilt; others carry on."""
        delay = 1.0
        while True:
            try:
                return await self._new_worker(subscriber).run()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error(
                    "subscriber_failed",
                    subscriber=subscriber.name,
                    error=f"{type(exc).__name__}: {exc}",
                    restart_in=delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 60.0)

    async def stop(self, grace: float = DEFAULT_GRACE_SECONDS) -> None:
        """Stop reading, let in-flight deliveries finish within ``grace``, commit watermarks.

        Whatever is still in flight after that is cancelled and delivered again after the
        restart (at-least-once; the event id stays the same).
        """
        for worker in self.workers.values():
            worker.stop_reading(grace)
        if self._tasks:
            pending: set[asyncio.Task[object]] = set(self._tasks)
            if grace > 0:
                _, pending = await asyncio.wait(pending, timeout=grace + 2 * FETCH_WAIT_SECONDS)
            for task in pending:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._tasks.clear()
