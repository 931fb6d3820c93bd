"""``relay replay`` on a real embedded log (under ``tmp_path``) to real local subscribers:
where it starts, only the subscriber's own dead letters, nothing committed, the refusals."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from relay.bus import FromOffset, Since
from relay.bus.embedded import LOG_FILE, EmbeddedLog, read
from relay.config import Config
from relay.delivery.replay import ReplayError, parse_since, range_start, replay
from tests.factories import chat_event, records
from tests.subscriber import Subscriber
from tests.support import make_config, running

NOW = datetime(2024, 5, 2, 12, 0, tzinfo=UTC)
NOW_MS = 1714651200000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", NOW_MS - 2 * 3600 * 1000),
        ("30m", NOW_MS - 30 * 60 * 1000),
        ("1500ms", NOW_MS - 1500),
        ("2024-05-02T12:00:00Z", NOW_MS),
        (" 2024-05-02T12:00:00Z ", NOW_MS),
        ("2024-05-02T11:00:00", NOW_MS - 3600 * 1000),  # no zone: UTC
        ("2024-05-02T14:00:00+02:00", NOW_MS),
        ("2024-05-02T12:00:00.250Z", NOW_MS + 250),
        ("2024-05-02t12:00:00z", NOW_MS),  # RFC 3339 allows both in lower case
    ],
)
def test_since_is_a_duration_ago_or_a_time(text: str, expected: int) -> None:
    assert parse_since(text, now=NOW) == expected


def test_since_defaults_to_now() -> None:
    before = datetime.now(UTC)
    got = parse_since("1h")
    after = datetime.now(UTC)
    hour = timedelta(hours=1)
    assert int((before - hour).timestamp() * 1000) <= got <= int((after - hour).timestamp() * 1000)
    assert parse_since("2024-05-02T12:00:00", now=datetime(1999, 1, 1, tzinfo=UTC)) == (NOW_MS)


def test_a_time_without_a_zone_is_utc_whatever_the_machines_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "America/Sao_Paulo")  # UTC-3, no summer time since 2019
    time.tzset()
    try:
        assert parse_since("2024-05-02T11:00:00", now=NOW) == NOW_MS - 3600 * 1000
    finally:
        monkeypatch.undo()
        time.tzset()


def test_a_since_that_is_neither_says_what_it_expected() -> None:
    with pytest.raises(ReplayError) as caught:
        parse_since("last tuesday")
    assert str(caught.value) == (
        "--since: expected a time like 2024-05-02T12:00:00Z or 2h, got 'last tuesday'"
    )


def test_the_start_is_made_once_from_since_or_from_offset() -> None:
    assert range_start("2024-05-02T12:00:00Z", None) == Since(NOW_MS)
    assert range_start(None, 3) == FromOffset(3)
    assert range_start(None, 0) == FromOffset(0)
    assert range_start(None, None) is None
    assert range_start("", None) is None  # an empty --since says nothing, as before
    with pytest.raises(ReplayError) as caught:
        range_start(None, -1)
    assert str(caught.value) == "--from-offset: an offset must be 0 or more (got -1)"


def config(tmp_path: Path, *subscribers: tuple[str, str]) -> Config:
    lines = "".join(
        f"  - {{name: {name}, url: '{url}', start_from: earliest, retry: {{max_attempts: 1}}}}\n"
        for name, url in subscribers
    )
    return make_config(f"data_dir: {tmp_path}\nsubscribers:\n{lines}")


async def test_mistakes_are_refused_before_anything_is_read(tmp_path: Path) -> None:
    two = config(tmp_path, ("crm", "http://127.0.0.1:9/a"), ("bi", "http://127.0.0.1:9/b"))
    with pytest.raises(ReplayError) as caught:
        await replay(two, "erp", FromOffset(0))
    assert str(caught.value) == "no subscriber named 'erp' (known: crm, bi)"
    with pytest.raises(ReplayError, match=r"^no subscriber named 'x' \(known: none configured\)$"):
        await replay(make_config(f"data_dir: {tmp_path}"), "x", FromOffset(0))
    with pytest.raises(ReplayError) as caught:
        await replay(two, "crm")
    assert str(caught.value) == "say where to start: --since TIME, --from-offset N or --deadletter"
    with pytest.raises(ReplayError) as caught:
        await replay(two, "crm", FromOffset(3), deadletter=True)
    assert str(caught.value) == "--deadletter takes --since, not --from-offset"
    assert list(tmp_path.iterdir()) == []  # no log opened for a refusal


async def publish(tmp_path: Path, count: int) -> list[str]:
    bus = EmbeddedLog(tmp_path)
    await bus.start()
    try:
        events = [chat_event(n % 2, n) for n in range(count)]
        await bus.publish(records("chat.events", events))
    finally:
        await bus.close()
    return [e.id for e in events]


async def test_from_an_offset_or_a_time_to_the_end_and_the_done_line(
    tmp_path: Path, subscriber: Subscriber
) -> None:
    settings = config(tmp_path, ("crm", subscriber.url))
    sent = await publish(tmp_path, 4)
    with capture_logs() as logs:
        stats = await replay(settings, "crm", FromOffset(3))
    assert [r.headers["webhook-id"] for r in subscriber.delivered()] == sent[2:]
    assert (stats.delivered, stats.deadlettered) == (2, 0)
    [done] = [line for line in logs if line["event"] == "replay_done"]
    assert (done["subscriber"], done["delivered"], done["deadlettered"]) == ("crm", 2, 0)
    subscriber.received.clear()
    stats = await replay(settings, "crm", Since(0))  # the same again: nothing committed
    assert stats.delivered == 4
    assert sorted(r.headers["webhook-id"] for r in subscriber.delivered()) == sorted(sent)


async def test_deadletter_re_sends_only_this_subscribers_dead_letters(tmp_path: Path) -> None:
    broken = True
    crm = await Subscriber(script=lambda s, b, h: 422 if broken else 200).start()
    bi = await Subscriber(script=lambda s, b, h: 422 if broken else 200).start()
    try:
        settings = config(tmp_path, ("crm", crm.url), ("bi", bi.url))
        sent = await publish(tmp_path, 3)
        bus = EmbeddedLog(tmp_path)
        await bus.start()
        service = await running(settings, bus)
        try:
            await crm.wait_for(lambda s: len(s.received) == 3)
            await bi.wait_for(lambda s: len(s.received) == 3)
        finally:
            await service.stop(grace=1)
            await bus.close()
        broken = False  # both fixed; only crm's dead letters are replayed
        stats = await replay(settings, "crm", deadletter=True)
        assert (stats.delivered, stats.deadlettered) == (3, 0)
        assert sorted(r.headers["webhook-id"] for r in crm.delivered()) == sorted(sent)
        assert bi.delivered() == []
        later = await replay(settings, "crm", Since(2**41), deadletter=True)
        assert later.delivered == 0  # --since limits which dead letters are re-sent
    finally:
        await crm.close()
        await bi.close()


async def test_deadletter_re_sends_the_dead_letters_not_what_was_delivered(tmp_path: Path) -> None:
    sent = await publish(tmp_path, 3)
    crm = await Subscriber(
        script=lambda s, b, h: 422 if h["webhook-id"] == sent[1] else 200
    ).start()
    try:
        settings = config(tmp_path, ("crm", crm.url))
        bus = EmbeddedLog(tmp_path)
        await bus.start()
        service = await running(settings, bus)
        try:
            await crm.wait_for(lambda s: len(s.received) == 3)
        finally:
            await service.stop(grace=1)
            await bus.close()
        crm.script = None  # fixed
        crm.received.clear()
        stats = await replay(settings, "crm", deadletter=True)
        assert (stats.delivered, stats.deadlettered) == (1, 0)
        assert [r.headers["webhook-id"] for r in crm.delivered()] == [sent[1]]
    finally:
        await crm.close()


async def test_a_replayed_delivery_that_fails_is_dead_lettered_again(tmp_path: Path) -> None:
    crm = await Subscriber(script=lambda s, b, h: 422).start()
    try:
        settings = config(tmp_path, ("crm", crm.url))
        sent = await publish(tmp_path, 2)
        stats = await replay(settings, "crm", FromOffset(1))
    finally:
        await crm.close()
    assert (stats.delivered, stats.deadlettered) == (0, 2)
    dead = read(tmp_path / LOG_FILE, settings.topics.deadletter)
    assert [dict(r.headers)["relay-event-id"] for r in dead] == [e.encode() for e in sent]
    assert {dict(r.headers)["relay-subscriber"] for r in dead} == {b"crm"}
