"""The dead-letter record: both origins' shapes, reading their why back, and reasons that
cannot drift from the code that raises them."""

from __future__ import annotations

import re
from pathlib import Path

from relay import deadletters
from relay.bus import Item

RELAY = Path(deadletters.__file__).parent
METADATA = (("relay-source", b"cw"), ("relay-provider", b"chatwoot"))


def item() -> Item:
    return Item(("t", 0, 1), 41, "chat.events", b"cw:9", b'{"id":"e1"}', (), 0)


def test_an_ingest_dead_letter_keeps_the_body_and_the_raw_copys_headers() -> None:
    record = deadletters.ingest_record(
        "relay.deadletter", b"{oops", b"cw", METADATA, "malformed_json", "é" * 600
    )
    assert (record.topic, record.value, record.key) == ("relay.deadletter", b"{oops", b"cw")
    assert record.headers[:2] == METADATA
    headers = dict(record.headers)
    assert headers["relay-reason"] == b"malformed_json"
    assert len(headers["relay-error"]) == deadletters.MAX_ERROR_BYTES  # cut, even mid-character
    why = deadletters.describe(headers)
    assert (why.origin, why.reason, why.source, why.subscriber) == (
        "ingest",
        "malformed_json",
        "cw",
        None,
    )


def test_a_delivery_dead_letter_names_the_subscriber_the_attempts_and_where_it_was_read() -> None:
    record = deadletters.delivery_record(
        "relay.deadletter",
        "crm",
        item(),
        "e1",
        reason="delivery_exhausted",
        attempts=3,
        status=503,
        error="HTTP 503",
    )
    assert (record.value, record.key) == (b'{"id":"e1"}', b"cw:9")
    headers = dict(record.headers)
    assert headers == {
        "relay-reason": b"delivery_exhausted",
        "relay-subscriber": b"crm",
        "relay-event-id": b"e1",
        "relay-attempts": b"3",
        "relay-last-status": b"503",
        "relay-error": b"HTTP 503",
        "relay-original-topic": b"chat.events",
        "relay-original-offset": b"41",
        "content-type": b"application/cloudevents+json; charset=utf-8",
    }
    why = deadletters.describe(headers)
    assert (why.origin, why.subscriber, why.attempts, why.last_status, why.event_id) == (
        "delivery",
        "crm",
        3,
        503,
        "e1",
    )
    assert deadletters.made_for(record.headers, b"crm")
    assert not deadletters.made_for(record.headers, b"other")


def test_a_re_encoded_event_replaces_the_value_and_a_missing_status_is_empty() -> None:
    record = deadletters.delivery_record(
        "dl", "crm", item(), "e1", reason="delivery_crashed", attempts=0, status=None,
        error=None, value=b"structured",
    )  # fmt: skip
    headers = dict(record.headers)
    assert record.value == b"structured"
    assert headers["relay-last-status"] == b"" and headers["relay-error"] == b""
    assert deadletters.describe(headers).last_status is None


def _literals(pattern: str, *files: Path) -> set[str]:
    return {found for file in files for found in re.findall(pattern, file.read_text())}


def test_every_reason_the_code_dead_letters_with_is_listed() -> None:
    sources = list(RELAY.rglob("*.py"))
    raised = _literals(r'Unmappable\(\s*"(\w+)"', *sources)
    raised |= _literals(r'_deadletter\(inbound, metadata, "(\w+)"', RELAY / "pipeline.py")
    assert {"unknown_event", "malformed_json", "normalizer_error"} <= raised  # the scan works
    assert raised <= set(deadletters.INGEST_REASONS)
    delivery = RELAY / "delivery"
    failed = {  # every quoted word on a line that sets a DeliveryResult's reason
        word
        for line in _literals(
            r"reason\s*=\s*(\"[^\n]*)", delivery / "sender.py", delivery / "worker.py"
        )
        for word in re.findall(r'"(\w+)"', line)
    }
    failed.discard("gone")  # a 410 disables the subscriber; nothing is dead-lettered
    assert {f"delivery_{reason}" for reason in failed} == set(deadletters.DELIVERY_REASONS)
