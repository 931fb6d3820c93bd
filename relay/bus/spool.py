"""Kafka with an on-disk spool: keep accepting while the broker is away, drain in order later.

- **direct**: records go to Kafka; ``publish`` returns once Kafka acknowledged them.
- **spooling**: Kafka did not acknowledge within ``spool_after`` (or is unreachable):
  records are committed to the spool (the embedded log, fsynced) and ``publish``
  returns; every later record goes behind them, so order per key is kept. A drainer
  forwards the spool to Kafka oldest first and deletes what Kafka acknowledged; once
  the spool is empty, publishing goes direct again.
- Past ``spool_max_bytes`` of spooled data ``publish`` raises :class:`BusError` (503).

A record whose direct attempt timed out may still reach Kafka from the producer's
buffer as well as from the spool: at-least-once, with the same event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import structlog

from relay.bus.base import Bus, BusError, BusRefused, Item, Record, RecordTooLarge
from relay.bus.claim import Claim, claim, orphans
from relay.bus.embedded import EmbeddedLog, delete_through, depth, read
from relay.metrics import LIVE

log = structlog.get_logger("relay.spool")

SPOOL_FILE = "spool.sqlite3"
Mode = Literal["direct", "spooling"]
_DRAIN_BATCH = 500
_RETRY_MIN, _RETRY_MAX = 0.2, 5.0


def _record(stored: Item) -> Record:
    return Record(topic=stored.topic, value=stored.value, key=stored.key, headers=stored.headers)


def _size(record: Record | Item) -> int:
    key = record.key
    size = len(record.value) + (len(key) if key is not None else 0)
    for name, value in record.headers:  # a plain loop: no generator per record (hot path)
        size += len(name) + len(value)
    return size


class SpooledBus:
    name = "kafka"

    def __init__(
        self,
        make_kafka: Callable[[], Bus],
        data_dir: Path,
        *,
        spool_after: float,
        max_bytes: int,
        max_record_bytes: int = 1_000_000,
        file_name: str = SPOOL_FILE,
        claim_base: str | None = None,
    ) -> None:
        """``claim_base``: spool to the first free file of that base (relay.bus.claim)
        instead of ``file_name``, so processes sharing ``data_dir`` never share a spool."""
        self.max_record_bytes = max_record_bytes
        self._make_kafka = make_kafka
        self._kafka: Bus | None = None
        self._data_dir = Path(data_dir)
        self._claim_base = claim_base
        self._claim: Claim | None = None
        self._spool = EmbeddedLog(data_dir, file_name)
        self.spool_after = spool_after
        self.max_bytes = max_bytes
        self.mode: Mode = "direct"
        self.spooled_bytes = 0
        self.spooled_records = 0
        self._writing = 0
        self._writes_started = 0
        self._full = False
        self._wake = asyncio.Event()
        self._drainer: asyncio.Task[None] | None = None
        self._adopted: list[asyncio.Task[None]] = []
        LIVE.track("relay_spool_records", self, lambda: [((), float(self.spooled_records))])
        LIVE.track("relay_spool_bytes", self, lambda: [((), float(self.spooled_bytes))])

    @property
    def path(self) -> Path:
        return self._spool.path

    async def start(self) -> None:
        if self._claim_base is not None and self._claim is None:
            self._claim = await asyncio.to_thread(claim, self._data_dir, self._claim_base)
            self._spool = EmbeddedLog(self._data_dir, self._claim.file_name)
            left = await asyncio.to_thread(
                orphans, self._data_dir, self._claim_base, self._claim.file_name
            )
            self._adopted = [
                asyncio.create_task(self._drain_orphan(o), name=f"spool-adopt-{o.file_name}")
                for o in left
            ]
        await self._spool.start()
        self.spooled_records, self.spooled_bytes = await asyncio.to_thread(depth, self.path)
        if self.spooled_records:
            self._set_mode("spooling", reason="records left in the spool at start-up")
        try:
            await self._connect()
        except BusRefused:
            # a certificate or password the broker refuses, or a broker without idempotent
            # producers: waiting will never help, so stop instead of spooling forever
            await self._close_spool()
            raise
        except BusError as exc:
            self._set_mode("spooling", reason=str(exc))
        self._drainer = asyncio.create_task(self._drain_forever(), name="spool-drainer")

    async def _connect(self) -> Bus:
        if self._kafka is None:
            kafka = self._make_kafka()
            try:
                async with asyncio.timeout(max(self.spool_after, 10.0)):
                    await kafka.start()
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    await kafka.close()
                if isinstance(exc, TimeoutError):
                    raise BusError("Kafka did not answer in time") from exc
                raise
            self._kafka = kafka
        return self._kafka

    async def _drain_orphan(self, orphan: Claim) -> None:
        """Another process's spool that it will not drain (``workers`` lowered): forwarded
        to Kafka through our producer, oldest first, then released."""
        path = self._data_dir / orphan.file_name
        log.info("spool_adopted", file=orphan.file_name)
        delay = _RETRY_MIN
        try:
            while True:
                stored = await asyncio.to_thread(read, path, None, 0, _DRAIN_BATCH)
                if not stored:
                    break
                try:
                    if self._kafka is None:  # start() or our drainer connects it
                        raise BusError("not connected to Kafka")
                    async with asyncio.timeout(max(self.spool_after, 10.0)):
                        await self._kafka.publish([_record(r) for r in stored])
                except (BusError, TimeoutError) as exc:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _RETRY_MAX)
                    log.info("spool_adoption_waiting", file=orphan.file_name, error=str(exc))
                    continue
                delay = _RETRY_MIN
                await asyncio.to_thread(delete_through, path, stored[-1].offset)
            log.info("spool_adopted_drained", file=orphan.file_name)
        finally:
            orphan.release()

    async def close(self) -> None:
        for task in self._adopted:
            task.cancel()
        for task in self._adopted:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._adopted = []
        if self._drainer is not None:
            self._drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drainer
            self._drainer = None
        if self._kafka is not None:
            kafka, self._kafka = self._kafka, None
            with contextlib.suppress(BusError):
                await kafka.close()
        await self._close_spool()

    async def _close_spool(self) -> None:
        try:
            await self._spool.close()
        finally:
            if self._claim is not None:
                self._claim.release()  # only now may another process take the file
                self._claim = None

    def ready(self) -> bool:
        """Not ready once the spool refused a request, until draining makes room again."""
        if self._full and self.spooled_bytes < self.max_bytes * 0.9:
            self._full = False
        return self._spool.ready() and not self._full

    def _set_mode(self, mode: Mode, reason: str) -> None:
        if mode != self.mode:
            self.mode = mode
            if mode == "spooling":
                log.warning("kafka_unavailable_spooling", reason=reason)
            else:
                log.info("kafka_recovered_direct", reason=reason)

    async def publish(self, records: Sequence[Record]) -> None:
        limit = self.max_record_bytes
        for record in records:
            if (size := _size(record)) > limit:
                # Kafka would refuse it forever: never acknowledge it, never spool it.
                raise RecordTooLarge(
                    f"a {size}-byte record for {record.topic} is over kafka.max_record_bytes "
                    f"({self.max_record_bytes})"
                )
        if self.mode == "direct":
            try:
                if self._kafka is None:
                    raise BusError("not connected to Kafka")
                # The Kafka bus gives up after spool_after itself (one timer per batch,
                # none per request).
                await self._kafka.publish(records)
                return
            except RecordTooLarge:
                raise
            except BusError as exc:
                self._set_mode("spooling", reason=str(exc) or "no acknowledgement in time")
        await self._to_spool(records)

    async def _to_spool(self, records: Sequence[Record]) -> None:
        size = sum(_size(r) for r in records)
        if self.spooled_bytes + size > self.max_bytes:
            self._full = True
            raise BusError(
                f"Kafka is unavailable and the spool is full ({self.spooled_bytes} bytes)"
            )
        self.spooled_bytes += size
        self.spooled_records += len(records)
        self._writing += 1
        self._writes_started += 1
        try:
            await self._spool.publish(records)
        except BaseException:
            self.spooled_bytes -= size
            self.spooled_records -= len(records)
            raise
        finally:
            self._writing -= 1
        self._wake.set()

    def _take(self) -> list[Item]:
        return read(self.path, limit=_DRAIN_BATCH)

    async def _drain_forever(self) -> None:
        delay = _RETRY_MIN
        while True:
            if self.mode == "direct":
                self._wake.clear()
                await self._wake.wait()
                continue
            # A spool write that began before this read may commit after the read's
            # snapshot: go direct only if none was under way and none began meanwhile.
            quiet_before = self._writing == 0
            writes_before = self._writes_started
            try:
                drained = await self._drain_once()
                if drained == 0:
                    await self._connect()  # direct again only with a working producer
            except (BusError, TimeoutError, sqlite3.Error) as exc:
                log.info(
                    "spool_drain_waiting", error=str(exc) or type(exc).__name__, retry_in=delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)
                continue
            delay = _RETRY_MIN
            if drained == 0:
                if quiet_before and self._writing == 0 and writes_before == self._writes_started:
                    self.spooled_records = self.spooled_bytes = 0  # exact again when empty
                    self._set_mode("direct", reason="the spool is drained")
                else:
                    await asyncio.sleep(0.01)

    async def _drain_once(self) -> int:
        stored = await asyncio.to_thread(self._take)
        if not stored:
            return 0
        kafka = await self._connect()
        records = [
            Record(topic=r.topic, value=r.value, key=r.key, headers=r.headers) for r in stored
        ]
        async with asyncio.timeout(max(self.spool_after, 10.0)):
            await kafka.publish(records)
        await asyncio.to_thread(delete_through, self.path, stored[-1].offset)
        self.spooled_records = max(0, self.spooled_records - len(stored))
        self.spooled_bytes = max(0, self.spooled_bytes - sum(_size(r) for r in stored))
        log.info("spool_drained", records=len(stored), left=self.spooled_records)
        return len(stored)
