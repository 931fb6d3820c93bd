"""The delivery service in one process: one supervised worker per subscriber on a real
embedded log (under ``tmp_path``), real local HTTP subscribers. Disable and enable (by an
operator, by a 410, by another process on the same ``data_dir``), standing by while
another process delivers, stop, and the ``relay_subscriber_disabled`` gauge."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from relay.bus import FromOffset, Item, open_range
from relay.bus.embedded import EmbeddedLog
from relay.config import Config
from relay.delivery import service as service_module
from relay.delivery.service import DeliveryService, UnknownSubscriber
from relay.delivery.state import DeliveryState
from relay.metrics import LIVE
from tests.factories import chat_event, records
from tests.subscriber import Subscriber
from tests.support import make_config, poll_until

EVENTS = "chat.events"


def config(tmp_path: Path, *subscribers: tuple[str, Subscriber]) -> Config:
    lines = "".join(
        f"  - {{name: {name}, url: '{sub.url}', start_from: earliest,"
        " retry: {max_attempts: 1}}\n"
        for name, sub in subscribers
    )
    return make_config(f"data_dir: {tmp_path}\nsubscribers:\n{lines}")


@pytest.fixture
async def bus(tmp_path: Path) -> AsyncIterator[EmbeddedLog]:
    log = EmbeddedLog(tmp_path)
    await log.start()
    yield log
    await log.close()


def gauge(name: str, *subscribers: str) -> dict[str, float]:
    """The live gauge's values for these subscribers (LIVE is one per process)."""
    return {
        sample.labels["subscriber"]: sample.value
        for family in LIVE.collect()
        if family.name == name
        for sample in family.samples
        if sample.labels["subscriber"] in subscribers
    }


def ids(subscriber: Subscriber) -> list[str]:
    return [r.headers["webhook-id"] for r in subscriber.delivered()]


async def publish(bus: EmbeddedLog, *numbers: int) -> list[str]:
    events = [chat_event(n, n) for n in numbers]
    await bus.publish(records(EVENTS, events))
    return [e.id for e in events]


async def test_every_subscriber_gets_its_own_worker_and_stop_ends_them(
    tmp_path: Path, bus: EmbeddedLog, subscriber: Subscriber
) -> None:
    other = await Subscriber().start()
    try:
        sent = await publish(bus, 1, 2)
        service = DeliveryService(config(tmp_path, ("crm", subscriber), ("bi", other)), bus)
        with capture_logs() as logs:
            await service.start()
        try:
            assert [
                line["subscribers"] for line in logs if line["event"] == "delivery_started"
            ] == [["bi", "crm"]]
            await subscriber.wait_for(lambda s: len(s.delivered()) == 2)
            await other.wait_for(lambda s: len(s.delivered()) == 2)
            assert gauge("relay_subscriber_disabled", "crm", "bi") == {"crm": 0.0, "bi": 0.0}
        finally:
            await service.stop(grace=1)
        assert sorted(ids(subscriber)) == sorted(ids(other)) == sorted(sent)
        assert gauge("relay_subscriber_disabled", "crm") == {}  # stop drops its series
        assert gauge("relay_consumer_lag", "crm") == {}
    finally:
        await other.close()


async def test_an_operator_disables_and_enables_a_subscriber(
    tmp_path: Path, bus: EmbeddedLog, subscriber: Subscriber
) -> None:
    service = DeliveryService(config(tmp_path, ("crm", subscriber)), bus)
    await service.start()
    try:
        first = await publish(bus, 1)
        await subscriber.wait_for(lambda s: len(s.delivered()) == 1)
        with capture_logs() as logs:
            assert await service.disable("crm") is True
            assert await service.disable("crm") is False  # already disabled
        assert [line["event"] for line in logs if line["event"].startswith("subscriber_")] == [
            "subscriber_disabled_by_operator"
        ]
        assert service.disabled["crm"].reason == "disabled by an operator"
        assert gauge("relay_subscriber_disabled", "crm") == {"crm": 1.0}
        stored = DeliveryState(tmp_path)
        try:
            assert stored.disabled(service.config.subscribers[0]) is not None  # kept on disk
        finally:
            stored.close()
        later = await publish(bus, 2)
        await asyncio.sleep(1.0)  # a bounded window: nothing arrives while disabled
        assert ids(subscriber) == first
        with capture_logs() as logs:
            assert await service.enable("crm") is True
        assert [line["event"] for line in logs] == ["subscriber_enabled"]
        await subscriber.wait_for(lambda s: len(s.delivered()) == 2)
        assert ids(subscriber) == first + later  # where it stopped, nothing skipped
        assert gauge("relay_subscriber_disabled", "crm", "bi") == {"crm": 0.0}
        assert await service.enable("crm") is False  # not disabled
    finally:
        await service.stop(grace=1)


async def test_unknown_names_are_refused_with_the_known_ones(
    tmp_path: Path, bus: EmbeddedLog, subscriber: Subscriber
) -> None:
    service = DeliveryService(config(tmp_path, ("crm", subscriber), ("bi", subscriber)), bus)
    with pytest.raises(UnknownSubscriber, match=r"^no subscriber named 'erp' \(known: crm, bi\)$"):
        await service.enable("erp")
    with pytest.raises(UnknownSubscriber, match=r"^no subscriber named 'erp'$"):
        await service.disable("erp")
    empty = DeliveryService(make_config(f"data_dir: {tmp_path}\n"), bus)
    with pytest.raises(UnknownSubscriber, match=r"\(known: none configured\)$"):
        await empty.enable("erp")
    await service.stop(grace=0)
    await empty.stop(grace=0)


async def test_a_410_disables_it_until_enabled_and_it_resumes_at_that_event(
    tmp_path: Path, bus: EmbeddedLog, subscriber: Subscriber
) -> None:
    gone = True
    subscriber.script = lambda s, body, headers: 410 if gone else 200
    service = DeliveryService(config(tmp_path, ("crm", subscriber)), bus)
    with capture_logs() as logs:
        await service.start()
        try:
            sent = await publish(bus, 1, 2)
            await poll_until(lambda: "crm" in service.disabled, what="disabled by the 410")
            disabled = service.disabled["crm"]
            assert (disabled.subscriber, disabled.status) == ("crm", 410)
            assert gauge("relay_subscriber_disabled", "crm") == {"crm": 1.0}
            gone = False
            assert await service.enable("crm") is True
            await subscriber.wait_for(lambda s: len(s.delivered()) == 2)
            assert ids(subscriber) == sent  # the event answered 410 is delivered, not skipped
        finally:
            await service.stop(grace=1)
    [line] = [line for line in logs if line["event"] == "subscriber_disabled"]
    assert (line["subscriber"], line["status"]) == ("crm", 410)
    assert line["hint"] == ("POST /admin/api/subscribers/crm/enable, or change its configuration")


async def test_a_subscriber_disabled_by_another_process_stops_here_too(
    tmp_path: Path, bus: EmbeddedLog, subscriber: Subscriber
) -> None:
    settings = config(tmp_path, ("crm", subscriber))
    service = DeliveryService(settings, bus)
    service.disabled_poll = 0.05
    await service.start()
    elsewhere = DeliveryState(tmp_path)  # another process on the same data_dir
    try:
        first = await publish(bus, 1)
        await subscriber.wait_for(lambda s: len(s.delivered()) == 1)
        with capture_logs() as logs:
            await asyncio.to_thread(elsewhere.disable, settings.subscribers[0], None, "by hand")
            await poll_until(lambda: "crm" in service.disabled, what="seen as disabled")
        assert [
            line["subscriber"] for line in logs if line["event"] == "subscriber_disabled_elsewhere"
        ] == ["crm"]
        assert service.disabled["crm"].reason == "by hand"
        await publish(bus, 2)
        await asyncio.sleep(0.5)  # a bounded window: nothing arrives while disabled
        assert ids(subscriber) == first
    finally:
        elsewhere.close()
        await service.stop(grace=1)


async def test_a_second_service_on_the_same_data_dir_stands_by_then_takes_over(
    tmp_path: Path, bus: EmbeddedLog, subscriber: Subscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_module, "STANDBY_POLL_SECONDS", 0.05)
    settings = config(tmp_path, ("crm", subscriber))
    active = DeliveryService(settings, bus)
    await active.start()
    await publish(bus, 1)
    await subscriber.wait_for(lambda s: len(s.delivered()) == 1)
    standby = DeliveryService(settings, bus)
    with capture_logs() as logs:
        await standby.start()
        try:
            await poll_until(
                lambda: any(line["event"] == "subscriber_standby" for line in logs),
                what="standing by",
            )
            await asyncio.sleep(0.3)  # several looks at the lock while it is held
            await active.stop(grace=1)
            sent = await publish(bus, 2)
            await subscriber.wait_for(lambda s: len(s.delivered()) == 2, within=30)
            assert ids(subscriber)[1:] == sent
        finally:
            await standby.stop(grace=1)
    [said] = [line for line in logs if line["event"] == "subscriber_standby"]  # said once
    assert said["subscriber"] == "crm"
    assert said["reason"].startswith("another process delivers for relay.sub.crm from ")


async def test_a_reload_that_changes_a_disabled_subscriber_enables_it(
    tmp_path: Path, bus: EmbeddedLog, subscriber: Subscriber
) -> None:
    service = DeliveryService(config(tmp_path, ("crm", subscriber), ("bi", subscriber)), bus)
    await service.start()
    try:
        await service.disable("crm")
        changed = make_config(
            f"data_dir: {tmp_path}\nsubscribers:\n"
            f"  - {{name: crm, url: '{subscriber.url}', start_from: earliest, timeout: 3s}}\n"
        )
        await service.reconcile(changed, grace=0.5)  # crm changed, bi removed
        assert "crm" not in service.disabled
        assert gauge("relay_subscriber_disabled", "crm", "bi") == {"crm": 0.0}
        sent = await publish(bus, 1)
        await subscriber.wait_for(lambda s: len(s.delivered()) == 1)
        assert ids(subscriber) == sent
    finally:
        await service.stop(grace=1)


async def read_topic(settings: Config, topic: str) -> list[Item]:
    """Everything on ``topic`` of the embedded log so far (a bounded read, nothing committed)."""
    reading = open_range(settings, [topic], "test.reader", FromOffset(0))
    await reading.start()
    got: list[Item] = []
    try:
        while (items := await reading.fetch(500, 0.1)) is not None:
            got += items
    finally:
        await reading.close()
    return got


async def test_the_workers_dead_letter_keep_counts_log_attempts_and_publish_gauges(
    tmp_path: Path, bus: EmbeddedLog, subscriber: Subscriber
) -> None:
    calls = 0

    def script(s: Subscriber, body: bytes, headers: dict[str, str]) -> int:
        nonlocal calls
        calls += 1
        return 422 if headers["webhook-id"] == rejected else 503

    subscriber.script = script
    settings = make_config(
        f"data_dir: {tmp_path}\nsubscribers:\n"
        f"  - {{name: crm, url: '{subscriber.url}', start_from: earliest,"
        " retry: {max_attempts: 5, initial: 30s}}\n"
    )
    rejected, retried = await publish(bus, 1, 2)
    service = DeliveryService(settings, bus)
    await service.start()
    try:
        await poll_until(lambda: calls >= 2, what="both events tried")
        stored = DeliveryState(tmp_path)
        try:  # the retried event's count, kept for a restart in the middle of its backoff
            await poll_until(lambda: stored.attempts("crm") == {retried: 1}, what="count stored")
        finally:
            stored.close()
        await poll_until(  # one still being retried
            lambda: gauge("relay_consumer_lag", "crm") == {"crm": 1.0}, what="a lag of one"
        )
        assert gauge("relay_circuit_state", "crm") == {"crm": 0.0}
    finally:
        await service.stop(grace=0)
    [dead] = await read_topic(settings, settings.topics.deadletter)
    assert dict(dead.headers)["relay-event-id"] == rejected.encode()
    logged = await read_topic(settings, settings.topics.attempts)
    assert {json.loads(item.value)["event_id"] for item in logged} == {rejected, retried}


async def test_latest_starts_at_the_stored_first_start_not_at_this_one(
    tmp_path: Path, bus: EmbeddedLog, subscriber: Subscriber
) -> None:
    first_start = int(time.time() * 1000) - 60_000
    stored = DeliveryState(tmp_path)
    stored.anchor("crm", at_ms=first_start)  # crm first ran a minute ago
    stored.close()
    sent = await publish(bus, 1)  # published since then, before this start
    settings = make_config(
        f"data_dir: {tmp_path}\nsubscribers:\n"
        f"  - {{name: crm, url: '{subscriber.url}', start_from: latest}}\n"
    )
    service = DeliveryService(settings, bus)
    await service.start()
    try:
        await subscriber.wait_for(lambda s: len(s.delivered()) == 1)
        assert ids(subscriber) == sent
    finally:
        await service.stop(grace=1)


async def test_enable_wakes_the_waiting_worker_and_counts_a_record_stored_elsewhere(
    tmp_path: Path, bus: EmbeddedLog, subscriber: Subscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    # only enable() can wake the disabled worker here: its own look at the store is an hour off
    monkeypatch.setattr(service_module, "STANDBY_POLL_SECONDS", 720.0)
    settings = config(tmp_path, ("crm", subscriber))
    service = DeliveryService(settings, bus)
    service.disabled_poll = 3600.0  # the watcher does not see it either
    await service.start()
    elsewhere = DeliveryState(tmp_path)
    try:
        await poll_until(lambda: "crm" in service.workers, what="running")
        elsewhere.disable(settings.subscribers[0], None, "by hand")  # another process did it
        with capture_logs() as logs:
            assert await service.enable("crm") is True  # the stored record counts
        assert logs == [{"event": "subscriber_enabled", "subscriber": "crm", "log_level": "info"}]
        assert elsewhere.disabled(settings.subscribers[0]) is None

        with capture_logs() as logs:
            before = int(time.time() * 1000)
            await service.disable("crm")
            after = int(time.time() * 1000)
        disabled = service.disabled["crm"]
        assert (disabled.subscriber, disabled.status) == ("crm", None)
        assert before <= disabled.at_ms <= after
        assert [line for line in logs if line["event"] == "subscriber_disabled_by_operator"] == [
            {"event": "subscriber_disabled_by_operator", "subscriber": "crm", "log_level": "info"}
        ]
        # the relaunched worker is waiting on its wake-up event (else enable would race it)
        await poll_until(
            lambda: "crm" in service._enabled and not service._enabled["crm"].is_set(),
            what="the disabled worker waiting",
        )
        with capture_logs() as logs:
            assert await service.enable("crm") is True
            assert "crm" not in service.disabled  # at once, not when the worker next looks
            sent = await publish(bus, 1)
            await subscriber.wait_for(lambda s: len(s.delivered()) == 1)
        assert ids(subscriber) == sent
        assert [line["event"] for line in logs] == ["subscriber_enabled"]  # woken, no failure
    finally:
        elsewhere.close()
        await service.stop(grace=1)


async def test_the_watcher_keeps_watching_while_nothing_runs(
    tmp_path: Path, bus: EmbeddedLog, subscriber: Subscriber
) -> None:
    settings = config(tmp_path, ("crm", subscriber))
    elsewhere = DeliveryState(tmp_path)
    elsewhere.disable(settings.subscribers[0], None, "by hand")  # disabled before the start
    service = DeliveryService(settings, bus)
    service.disabled_poll = 0.05
    await service.start()
    try:
        await poll_until(lambda: "crm" in service.disabled, what="seen as disabled")
        await asyncio.sleep(0.2)  # a few polls with nothing running
        await service.enable("crm")
        await poll_until(lambda: "crm" in service.workers, what="running again")
        elsewhere.disable(settings.subscribers[0], None, "by hand, again")
        await poll_until(
            lambda: (
                service.disabled.get("crm") is not None
                and service.disabled["crm"].reason == "by hand, again"
            ),
            what="disabled elsewhere, seen here",
        )
    finally:
        elsewhere.close()
        await service.stop(grace=1)


async def test_a_reload_says_what_it_did_and_forgets_removed_subscribers(
    tmp_path: Path, bus: EmbeddedLog, subscriber: Subscriber
) -> None:
    one = config(tmp_path, ("crm", subscriber))
    two = config(tmp_path, ("crm", subscriber), ("bi", subscriber))
    service = DeliveryService(one, bus)
    await service.start()
    try:
        with capture_logs() as logs:
            await service.reconcile(two, grace=0.5)  # only added
            await poll_until(lambda: "bi" in service.workers, what="bi running")
            await service.disable("bi")
            await service.reconcile(two, grace=0.5)  # nothing changed: nothing said
            await service.reconcile(one, grace=0.5)  # only removed
        lines = [line for line in logs if line["event"] == "delivery_reconciled"]
        assert [(line["started"], line["stopped"], line["restarted"]) for line in lines] == [
            (["bi"], [], []),
            ([], ["bi"], []),
        ]
        assert "bi" not in service.workers
        assert "bi" not in service.disabled
    finally:
        await service.stop(grace=1)


async def test_a_worker_that_fails_is_restarted_with_a_doubling_delay(
    tmp_path: Path, bus: EmbeddedLog, subscriber: Subscriber
) -> None:
    lock = tmp_path / ".relay.sub.crm.lock"
    lock.mkdir()  # the subscription cannot take its lock: the worker fails at start
    service = DeliveryService(config(tmp_path, ("crm", subscriber)), bus)
    with capture_logs() as logs:
        await service.start()
        try:
            failed = lambda: [line for line in logs if line["event"] == "subscriber_failed"]  # noqa: E731
            await poll_until(lambda: len(failed()) >= 2, what="two failures")
            lock.rmdir()
            sent = await publish(bus, 1)
            await subscriber.wait_for(lambda s: len(s.delivered()) == 1)
            assert ids(subscriber) == sent  # restarted, and delivering
        finally:
            await service.stop(grace=1)
    first, second = failed()[:2]
    assert (first["subscriber"], first["restart_in"], second["restart_in"]) == ("crm", 1.0, 2.0)
    assert first["error"].startswith("IsADirectoryError: ")
    assert first["log_level"] == "error"


async def test_stop_reads_no_more_and_lets_the_delivery_in_flight_finish(
    tmp_path: Path, bus: EmbeddedLog, subscriber: Subscriber
) -> None:
    release = asyncio.Event()

    async def hold(s: Subscriber, body: bytes, headers: dict[str, str]) -> int:
        await release.wait()
        return 200

    subscriber.script = hold
    settings = config(tmp_path, ("crm", subscriber))
    service = DeliveryService(settings, bus)
    await service.start()
    [held] = await publish(bus, 1)
    await poll_until(lambda: subscriber.in_flight == 1, what="a delivery in flight")
    stopping = asyncio.create_task(service.stop(grace=1))
    await asyncio.sleep(0.1)
    await publish(bus, 2)  # published once stopping began: not read
    release.set()
    await asyncio.wait_for(stopping, 30)
    assert ids(subscriber) == [held]
    await asyncio.sleep(0.5)  # a bounded window: nothing more goes out after stop()
    assert ids(subscriber) == [held]
    # the finished delivery was committed: a restart delivers only the unread one
    subscriber.script = None
    again = DeliveryService(settings, bus)
    await again.start()
    try:
        await subscriber.wait_for(lambda s: len(s.delivered()) == 2)
        await asyncio.sleep(0.3)
        assert len(ids(subscriber)) == 2 and ids(subscriber)[0] == held
    finally:
        await again.stop(grace=1)


async def test_a_subscriber_enabled_by_another_process_resumes_here(
    tmp_path: Path, bus: EmbeddedLog, subscriber: Subscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service_module, "STANDBY_POLL_SECONDS", 0.01)  # looks every 0.05 s
    settings = config(tmp_path, ("crm", subscriber))
    elsewhere = DeliveryState(tmp_path)
    elsewhere.disable(settings.subscribers[0], 410, "HTTP 410: gone")
    service = DeliveryService(settings, bus)
    with capture_logs() as logs:
        await service.start()
        try:
            await poll_until(lambda: "crm" in service.disabled, what="seen as disabled")
            elsewhere.enable("crm")  # another process enabled it
            await poll_until(lambda: "crm" not in service.disabled, what="seen as enabled")
            sent = await publish(bus, 1)
            await subscriber.wait_for(lambda s: len(s.delivered()) == 1)
            assert ids(subscriber) == sent
        finally:
            elsewhere.close()
            await service.stop(grace=1)
    [said] = [line for line in logs if line["event"] == "subscriber_disabled"]  # once
    assert (said["status"], said["reason"]) == (410, "HTTP 410: gone")
    assert not [line for line in logs if line["event"] == "subscriber_failed"]
