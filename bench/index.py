"""How fast the console's index answers on a million stored events.

    python -m bench.index                 # 1,000,000 events, ~1-2 minutes
    python -m bench.index --events 100000 # quicker

Builds ``index.sqlite3`` in a temporary directory through the same ``Index.add`` the
indexer uses (canonical-event JSON records, a raw record per event, attempts for one in
ten, a dead letter for one in a hundred), then times each kind of search the admin API
and the console make. Prints one Markdown table (median and worst of the repetitions).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from relay.attempts import Attempt
from relay.bus import Item
from relay.index.store import Filters, Index

TYPES = (
    "chat.message.created",
    "chat.message.status_changed",
    "chat.conversation.updated",
    "chat.conversation.status_changed",
    "chat.contact.updated",
)
SOURCES = ("nexloo", "trino", "plugchat", "acme")
START_MS = 1_790_000_000_000
_encode = msgspec.json.encode


def _event(i: int, rng: random.Random) -> tuple[bytes, str, str]:
    source = SOURCES[i % len(SOURCES)]
    conversation = rng.randrange(50_000)
    phone = f"+55449{conversation:08d}"
    moment = START_MS + i * 250  # four events a second: ~3 days for a million
    when = datetime.fromtimestamp(moment / 1000, UTC).isoformat(timespec="milliseconds")
    body = {
        "specversion": "1.0",
        "id": f"{i:08x}-0000-5000-8000-{rng.getrandbits(48):012x}",
        "source": f"relay/{source}",
        "type": TYPES[i % len(TYPES)],
        "subject": f"conversation/{conversation}",
        "time": when.replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "dataschema": "urn:relay:schema:1.1",
        "partitionkey": f"{source}:{conversation}",
        "data": {
            "provider": "chatwoot",
            "source": source,
            "provider_event": "message_created",
            "conversation": {"id": str(conversation), "status": "open"},
            "message": {
                "id": str(i),
                "direction": "incoming",
                "kind": "text",
                "text": "Oi, boa tarde! Vocês entregam em Maringá?",
            },
            "contact": {"id": str(conversation), "name": "Cliente", "phone": phone},
        },
    }
    return _encode(body), body["id"], phone  # type: ignore[return-value]


def build(index: Index, count: int, batch: int = 5000) -> tuple[float, list[str], list[str]]:
    rng = random.Random(7)
    ids: list[str] = []
    phones: list[str] = []
    offset = 0
    started = time.perf_counter()
    for first in range(0, count, batch):
        records: list[Item] = []
        for i in range(first, min(first + batch, count)):
            value, event_id, phone = _event(i, rng)
            stamp = START_MS + i * 250
            records.append(
                Item(
                    ("relay.raw", 0, 0),
                    offset,
                    "relay.raw",
                    b"nexloo",
                    b"{}",
                    (("relay-source", b"nexloo"),),
                    stamp,
                )
            )
            records.append(
                Item(("chat.events", 0, 0), offset + 1, "chat.events", None, value, (), stamp)
            )
            offset += 2
            if i % 10 == 0:
                attempt = Attempt(
                    event_id=event_id,
                    subscriber="crm",
                    attempt=1,
                    at_ms=stamp,
                    duration_ms=3.0,
                    outcome="retrying" if i % 100 == 0 else "delivered",
                    status=503 if i % 100 == 0 else 200,
                )
                records.append(
                    Item(
                        ("relay.attempts", 0, 0),
                        offset,
                        "relay.attempts",
                        None,
                        _encode(attempt),
                        (),
                        stamp,
                    )
                )
                offset += 1
            if i % 100 == 0:
                headers = (
                    ("relay-event-id", event_id.encode()),
                    ("relay-subscriber", b"crm"),
                    ("relay-reason", b"delivery_exhausted"),
                )
                records.append(
                    Item(
                        ("relay.deadletter", 0, 0),
                        offset,
                        "relay.deadletter",
                        None,
                        value,
                        headers,
                        stamp,
                    )
                )
                offset += 1
            if i % 997 == 0:
                ids.append(event_id)
                phones.append(phone)
        index.add(records, adjacent_raw=True)
    return time.perf_counter() - started, ids, phones


def timed(call: Callable[[], object], repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), max(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument(
        "--dir", type=Path, help="build the index here, or reuse the one built there before"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.dir or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        index = Index(
            folder,
            topics=("relay.raw", "relay.deadletter", "relay.attempts"),
            max_events=max(args.events, 1000),
        )
        sample = folder / "sample.json"
        if sample.exists():
            seconds, ids, phones = json.loads(sample.read_text())
        else:
            seconds, ids, phones = build(index, args.events)
            sample.write_text(json.dumps([seconds, ids, phones]))
        size = index.path.stat().st_size / 1e6
        rng = random.Random(1)
        page = index.search(Filters(type="chat.message.created"), limit=50)
        middle_ms = START_MS + args.events * 125
        cases: list[tuple[str, Callable[[], object]]] = [
            ("event by id", lambda: index.event(rng.choice(ids))),
            ("its attempts", lambda: index.attempts(rng.choice(ids))),
            ("its raw body reference", lambda: index.raw_ref(rng.choice(ids))),
            ("its dead letters", lambda: index.deadletters(event_id=rng.choice(ids))),
            (
                "by conversation (key), newest 50",
                lambda: index.search(Filters(key=f"nexloo:{rng.randrange(50_000)}"), 50),
            ),
            (
                "by contact phone, newest 50",
                lambda: index.search(Filters(phone=rng.choice(phones)), 50),
            ),
            ("by type, newest 50", lambda: index.search(Filters(type="chat.message.created"), 50)),
            (
                "by type, next page (cursor)",
                lambda: index.search(Filters(type="chat.message.created"), 50, page.next_cursor),
            ),
            (
                "by type + source + 1 h time range",
                lambda: index.search(
                    Filters(
                        type="chat.contact.updated",
                        source="trino",
                        since_ms=middle_ms,
                        until_ms=middle_ms + 3_600_000,
                    ),
                    50,
                ),
            ),
            (
                "by type glob chat.conversation.*",
                lambda: index.search(Filters(type="chat.conversation.*"), 50),
            ),
            ("everything, newest 50", lambda: index.search(Filters(), 50)),
            ("a glob no type matches", lambda: index.search(Filters(type="chat.nothing.*"), 50)),
            (
                "a type and an unknown source",
                lambda: index.search(Filters(type="chat.contact.updated", source="nobody"), 50),
            ),
            (
                "a conversation without events of a common type",
                lambda: index.search(Filters(key="nobody:1", type="chat.message.created"), 50),
            ),
            (
                "type + 1 h range at the oldest end",
                lambda: index.search(
                    Filters(
                        type="chat.message.created",
                        since_ms=START_MS,
                        until_ms=START_MS + 3_600_000,
                    ),
                    50,
                ),
            ),
            (
                "a subscriber's dead letters, newest 200",
                lambda: index.deadletters(subscriber="crm", limit=200),
            ),
            (
                "subscriber stats (5 min of attempts)",
                lambda: index.subscriber_stats(START_MS + args.events * 250 - 300_000),
            ),
        ]
        print(
            f"{args.events:,} events indexed in {seconds:.1f} s "
            f"({args.events / seconds:,.0f} events/s with their raw, attempt and dead-letter "
            f"records), index file {size:,.0f} MB\n"
        )
        print("| search | median ms | worst ms |")
        print("|---|---:|---:|")
        for name, call in cases:
            median, worst = timed(call, args.repeat)
            print(f"| {name} | {median:.2f} | {worst:.2f} |")
        index.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
