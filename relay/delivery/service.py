"""Runs one worker per configured subscriber, each isolated from the others and from ingest."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import structlog

from relay import units
from relay.attempts import AttemptLog
from relay.bus import Bus, SubscriptionBusy, subscribe
from relay.config import Config, Subscriber
from relay.deadletters import DeadLetters
from relay.delivery.sender import Sender
from relay.delivery.state import DeliveryState, Disabled
from relay.delivery.worker import FETCH_WAIT_SECONDS, SubscriberWorker
from relay.metrics import LIVE

if TYPE_CHECKING:
    from relay.telemetry.otel import Tracing

log = structlog.get_logger("relay.delivery")
DEFAULT_GRACE_SECONDS = 5.0
STANDBY_POLL_SECONDS = 2.0
DISABLED_POLL_SECONDS = 5.0


class UnknownSubscriber(Exception):
    pass


class DeliveryService:
    """One supervised worker per subscriber; subscribers can be added, changed or removed live."""

    def __init__(self, config: Config, bus: Bus, *, tracing: Tracing | None = None) -> None:
        self.config = config
        self.tracing = tracing
        self.dead_letters = DeadLetters(bus, config.topics.deadletter)
        self.attempt_log = AttemptLog(bus, config.topics.attempts)
        self.state = DeliveryState(config.data_path)
        self.workers: dict[str, SubscriberWorker] = {}
        self.disabled: dict[str, Disabled] = {}
        self._anchors: dict[str, int] = {}
        self._enabled: dict[str, asyncio.Event] = {}
        self._tasks: dict[str, asyncio.Task[object]] = {}
        self._running: set[str] = set()
        """Subscribers inside ``worker.run()``; the others (disabled, standing by, waiting
        to restart) have nothing in flight and are cancelled at once on stop."""
        self.disabled_poll = DISABLED_POLL_SECONDS
        self._watcher: asyncio.Task[None] | None = None

    def _new_worker(self, subscriber: Subscriber) -> SubscriberWorker:
        worker = SubscriberWorker(
            subscriber,
            subscribe(self.config, subscriber, self._anchors.get(subscriber.name)),
            Sender(subscriber, tracing=self.tracing),
            self.dead_letters,
            state=self.state,
            live=True,
            attempts=self.attempt_log,
        )
        self.workers[subscriber.name] = worker
        return worker

    def _launch(self, subscriber: Subscriber) -> None:
        name = subscriber.name
        LIVE.put("relay_subscriber_disabled", name, lambda: self._disabled_gauge(name))
        task = asyncio.create_task(self._supervise(subscriber), name=name)
        self._tasks[name] = task

    def _disabled_gauge(self, name: str) -> list[tuple[tuple[str, ...], float]]:
        return [((name,), 1.0 if name in self.disabled else 0.0)]

    async def _anchor(self, subscribers: list[Subscriber]) -> None:
        """Record each subscriber's first start (kept across restarts) before it runs.

        Done before the app listens, so nothing acknowledged after ``/readyz`` turns 200
        can fall before a new subscriber's start.
        """
        names = [s.name for s in subscribers if s.name not in self._anchors]
        if names:
            anchors = await asyncio.to_thread(lambda: {n: self.state.anchor(n) for n in names})
            self._anchors.update(anchors)

    async def start(self) -> None:
        await self.attempt_log.start()
        await self._anchor(self.config.subscribers)
        for subscriber in self.config.subscribers:
            self._launch(subscriber)
        if self._tasks:
            log.info("delivery_started", subscribers=sorted(self._tasks))
        self._watcher = asyncio.create_task(self._watch_disabled(), name="watch-disabled")

    def _disabled_among(self, subscribers: list[Subscriber]) -> list[Subscriber]:
        return [s for s in subscribers if self.state.disabled(s) is not None]

    async def _watch_disabled(self) -> None:
        """A subscriber disabled by another process on this data_dir (the worker or replica
        the admin API reached) stops delivering here too, within ``disabled_poll``."""
        while True:
            await asyncio.sleep(self.disabled_poll)
            running = [
                s
                for s in self.config.subscribers
                if s.name in self._running and s.name not in self.disabled
            ]
            if not running:
                continue
            found = await asyncio.to_thread(self._disabled_among, running)
            for subscriber in found:
                if subscriber.name in self._running and subscriber.name not in self.disabled:
                    log.info("subscriber_disabled_elsewhere", subscriber=subscriber.name)
                    await self._stop([subscriber.name], DEFAULT_GRACE_SECONDS)
                    self._launch(subscriber)  # waits while disabled

    async def enable(self, name: str) -> bool:
        """Re-enable a subscriber disabled by a 410; True when it was disabled."""
        if name not in {s.name for s in self.config.subscribers}:
            known = ", ".join(s.name for s in self.config.subscribers) or "none configured"
            raise UnknownSubscriber(f"no subscriber named {name!r} (known: {known})")
        was = await asyncio.to_thread(self.state.enable, name)
        was = self.disabled.pop(name, None) is not None or was
        event = self._enabled.get(name)
        if event is not None:
            event.set()
        if was:
            log.info("subscriber_enabled", subscriber=name)
        return was

    async def disable(self, name: str) -> bool:
        """Stop delivering to a subscriber until it is enabled (an operator's choice)."""
        subscriber = next((s for s in self.config.subscribers if s.name == name), None)
        if subscriber is None:
            raise UnknownSubscriber(f"no subscriber named {name!r}")
        if name in self.disabled:
            return False
        reason = "disabled by an operator"
        await asyncio.to_thread(self.state.disable, subscriber, None, reason)
        self.disabled[name] = Disabled(
            subscriber=name, status=None, reason=reason, at_ms=units.now_ms()
        )
        await self._stop([name], DEFAULT_GRACE_SECONDS)
        self._launch(subscriber)  # waits while disabled
        log.info("subscriber_disabled_by_operator", subscriber=name)
        return True

    async def _wait_while_disabled(self, subscriber: Subscriber) -> None:
        """Disabled (by a 410, in this process or stored): wait for enable or a new config."""
        name = subscriber.name
        while True:
            disabled = await asyncio.to_thread(self.state.disabled, subscriber)
            if disabled is None:
                self.disabled.pop(name, None)
                return
            if name not in self.disabled:
                log.warning(
                    "subscriber_disabled",
                    subscriber=name,
                    status=disabled.status,
                    reason=disabled.reason,
                    hint=f"POST /admin/api/subscribers/{name}/enable, or change its configuration",
                )
            self.disabled[name] = disabled
            event = self._enabled[name] = asyncio.Event()
            # another process sharing data_dir may enable it too: look again now and then
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout=STANDBY_POLL_SECONDS * 5)

    async def _supervise(self, subscriber: Subscriber) -> object:
        """A worker that fails (broker gone at start, say) is rebuilt; others carry on."""
        delay = 1.0
        standing_by = False
        while True:
            try:
                await self._wait_while_disabled(subscriber)
                worker = self._new_worker(subscriber)
                self._running.add(subscriber.name)
                try:
                    stats = await worker.run()
                finally:
                    self._running.discard(subscriber.name)
                if worker.gone is None:
                    return stats
                gone = worker.gone
                await asyncio.to_thread(
                    self.state.disable, subscriber, gone.status, gone.error or "410 Gone"
                )
            except asyncio.CancelledError:
                raise
            except SubscriptionBusy as exc:
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
        pending = {task for name, task in tasks.items() if name in self._running}
        for name, task in tasks.items():
            if name not in self._running:
                task.cancel()
        if grace > 0 and pending:
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
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        names = list(self._tasks)
        await self._stop(names, grace)
        for name in names:
            LIVE.drop(name)
        await self.attempt_log.close()
        await asyncio.to_thread(self.state.close)

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
            self.disabled.pop(name, None)
            LIVE.drop(name)
        for name in stale:
            self.disabled.pop(name, None)  # looked up again: a changed config enables it
        self.config = config
        await self._anchor(list(wanted.values()))
        for name, subscriber in wanted.items():
            if name not in self._tasks:
                self._launch(subscriber)
        if stale or set(wanted) != set(current):
            log.info(
                "delivery_reconciled",
                subscribers=sorted(wanted),
                started=sorted(set(wanted) - set(current)),
                stopped=sorted(set(current) - set(wanted)),
                restarted=sorted(name for name in stale if name in wanted),
            )
