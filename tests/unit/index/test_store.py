"""The index on a real SQLite file: what it finds, how it pages, what it forgets."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from relay.attempts import Attempt
from relay.bus import Item
from relay.index.store import Filters, Index


def event(
    i: int,
    key: str,
    *,
    phone: str | None = None,
    type_: str = "chat.message.created",
    source: str = "nexloo",
    time_ms: int | None = None,
) -> dict[str, object]:
    moment = 1_700_000_000_000 + (i if time_ms is None else time_ms) * 1000
    from datetime import UTC, datetime

    when = datetime.fromtimestamp(moment / 1000, UTC).isoformat().replace("+00:00", "Z")
    contact = {"phone": phone} if phone else {"chat_id": f"{i}@lid"}
    return {
        "id": f"ev-{i}",
        "type": type_,
        "partitionkey": key,
        "time": when,
        "data": {"source": source, "contact": contact},
    }


def record(
    topic: str,
    offset: int,
    value: bytes,
    headers: tuple[tuple[str, bytes], ...] = (),
    ts: int = 1_700_000_000_000,
) -> Item:
    return Item((topic, 0, 0), offset, topic, None, value, headers, ts)


@pytest.fixture
def index(tmp_path: Path) -> Index:
    return Index(tmp_path, topics=("raw", "dl", "attempts"), max_events=1000)


def test_filters_find_exactly_their_events(index: Index) -> None:
    records = [
        record(
            "events",
            i,
            json.dumps(
                event(
                    i,
                    f"nexloo:{i % 3}",
                    phone="+5544999990001" if i == 4 else None,
                    type_="chat.contact.created" if i == 5 else "chat.message.created",
                    source="plugchat" if i == 6 else "nexloo",
                )
            ).encode(),
        )
        for i in range(10)
    ]
    index.add(records)

    def ids(**kw: object) -> list[str]:
        return [e.id for e in index.search(Filters(**kw), limit=100).events]  # type: ignore[arg-type]

    assert ids(key="nexloo:1") == ["ev-7", "ev-4", "ev-1"]  # newest first
    assert ids(phone="+5544999990001") == ["ev-4"]
    assert ids(phone="5544999990001") == ["ev-4"]  # digits alone
    assert ids(phone="3@lid") == ["ev-3"]
    assert ids(type="chat.contact.created") == ["ev-5"]
    assert ids(type="chat.contact.*") == ["ev-5"]
    assert ids(source="relay/plugchat") == ["ev-6"]
    t = 1_700_000_000_000
    assert ids(since_ms=t + 7000) == ["ev-9", "ev-8", "ev-7"]
    assert ids(since_ms=t + 2000, until_ms=t + 4000) == ["ev-3", "ev-2"]
    assert ids(key="nexloo:1", type="chat.contact.created") == []


def test_a_cursor_walks_every_event_once(index: Index) -> None:
    # equal event times: the cursor's rowid part keeps the order total
    index.add(
        [record("events", i, json.dumps(event(i, "k", time_ms=i // 4)).encode()) for i in range(25)]
    )
    seen: list[str] = []
    cursor = None
    while True:
        page = index.search(Filters(), limit=7, cursor=cursor)
        seen += [e.id for e in page.events]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert sorted(seen) == sorted(f"ev-{i}" for i in range(25)) and len(seen) == 25
    # a glob reads each type it matches and merges them: the same walk, across types
    index.add(
        [
            record(
                "events",
                100 + i,
                json.dumps(
                    event(100 + i, "k", time_ms=i // 3, type_="chat.contact.created")
                ).encode(),
            )
            for i in range(10)
        ]
    )
    walked: list[str] = []
    cursor = None
    while True:
        page = index.search(Filters(type="chat.*"), limit=4, cursor=cursor)
        walked += [e.id for e in page.events]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert len(walked) == 35 and len(set(walked)) == 35
    times = [index.event(i).time_ms for i in walked]  # type: ignore[union-attr]
    assert times == sorted(times, reverse=True)
    assert index.search(Filters(type="chat.nothing.*")).events == []
    with pytest.raises(ValueError, match="cursor"):
        index.search(Filters(), cursor="garbage")


def test_attempts_deadletters_raw_and_positions(index: Index) -> None:
    raw_headers = (("relay-source", b"nexloo"), ("relay-request-id", b"req-1"))
    attempt = Attempt(
        event_id="ev-1",
        subscriber="crm",
        attempt=1,
        at_ms=5,
        duration_ms=1.5,
        outcome="deadlettered",
        status=500,
        excerpt="nope",
    )
    dl_headers = (
        ("relay-event-id", b"ev-1"),
        ("relay-subscriber", b"crm"),
        ("relay-reason", b"delivery_exhausted"),
        ("relay-attempts", b"1"),
        ("relay-last-status", b"500"),
    )
    index.add(
        [
            record("raw", 1, b'{"event": "message_created"}', raw_headers),
            record("events", 2, json.dumps(event(1, "nexloo:1")).encode()),
            record("attempts", 3, msgspec.json.encode(attempt)),
            record("dl", 4, b"{}", dl_headers, ts=10),
            record("events", 5, b"not json at all"),  # skipped, never fatal
        ],
        adjacent_raw=True,
    )
    raw = index.raw_ref("ev-1")
    assert raw is not None and (raw.offset, raw.request_id, raw.matched_by) == (
        1,
        "req-1",
        "adjacent",
    )
    [row] = index.attempts("ev-1")
    assert (row.outcome, row.status, row.excerpt) == ("deadlettered", 500, "nope")
    [dl] = index.deadletters(subscriber="crm")
    assert (dl.event_id, dl.reason, dl.attempts, dl.status) == (
        "ev-1",
        "delivery_exhausted",
        1,
        500,
    )
    assert index.redelivered([dl]) == set()
    delivered = Attempt(
        event_id="ev-1",
        subscriber="crm",
        attempt=1,
        at_ms=20,
        duration_ms=1.0,
        outcome="delivered",
        status=200,
        replay=True,
    )
    index.add([record("attempts", 6, msgspec.json.encode(delivered))])
    assert index.redelivered([dl]) == {("ev-1", "crm")}
    assert index.positions()[("events", 0)] == 6
    stats = index.subscriber_stats(0)["crm"]
    assert (stats["delivered"], stats["failed"]) == (1, 1)


def test_bounded_by_count_and_retention(tmp_path: Path) -> None:
    index = Index(tmp_path, topics=("raw", "dl", "attempts"), max_events=1000, retention_ms=60_000)
    index.add(
        [record("events", i, json.dumps(event(i, "k")).encode(), ts=i * 1000) for i in range(1500)]
    )
    index.trim(now_ms=1_000 * 1500)
    remaining = index.counts()["events"]
    assert remaining == 60  # the retention's minute, under the count bound
    index.retention_ms = None
    index.add(
        [record("events", 2000 + i, json.dumps(event(2000 + i, "k")).encode()) for i in range(1500)]
    )
    index.trim()
    assert index.counts()["events"] == 1000


def test_the_raw_body_is_found_by_offset_then_delivery_id_then_nearest_time(index: Index) -> None:
    """Kafka does not keep a body's records together, so the raw body is looked up three
    ways, each only when the one before cannot say."""

    def raw(offset: int, request: str, delivery: bytes | None, ts: int) -> Item:
        headers = [("relay-source", b"nexloo"), ("relay-request-id", request.encode())]
        headers += [("relay-delivery-id", delivery)] if delivery else []
        return record("raw", offset, b"{}", tuple(headers), ts=ts)

    by_delivery = {**event(2, "nexloo:2"), "providerdelivery": "d-2"}
    index.add(
        [
            raw(10, "req-far", None, 1_000),
            raw(11, "req-near", None, 50_000),
            raw(12, "req-d2", b"d-2", 90_000),
            record("events", 20, json.dumps(event(1, "nexloo:1")).encode(), ts=51_000),
            record("events", 21, json.dumps(by_delivery).encode(), ts=52_000),
            record("events", 22, json.dumps(event(3, "nexloo:3")).encode(), ts=500_000),
        ],
        adjacent_raw=False,
    )
    index.add(
        [
            raw(13, "req-adj", None, 600_000),
            record("events", 23, json.dumps(event(4, "k")).encode()),
        ],
        adjacent_raw=True,
    )
    found = {i: index.raw_ref(f"ev-{i}") for i in (1, 2, 3, 4)}
    assert found[4] is not None and (found[4].request_id, found[4].matched_by) == (
        "req-adj",
        "adjacent",
    )
    assert found[2] is not None and (found[2].request_id, found[2].matched_by) == (
        "req-d2",
        "delivery",
    )
    assert found[1] is not None and (found[1].request_id, found[1].matched_by) == (
        "req-near",
        "nearest",
    )
    assert found[3] is None  # no raw body within 5 s before or 1 s after it was stored
