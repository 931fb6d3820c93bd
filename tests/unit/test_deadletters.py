"""The dead-letter record's headers: both origins' shapes, and reading their why back.
(That every reason the code writes is listed is tests/unit/contracts/test_tables.py's.)"""

from __future__ import annotations

from relay import deadletters

METADATA = (("relay-source", b"cw"), ("relay-provider", b"chatwoot"))


def test_an_ingest_dead_letter_keeps_the_raw_copys_headers_then_says_why() -> None:
    headers = deadletters.ingest_headers(METADATA, "malformed_json", "é" * 600)
    assert headers[:2] == METADATA
    found = dict(headers)
    assert found["relay-reason"] == b"malformed_json"
    assert len(found["relay-error"]) == deadletters.MAX_ERROR_BYTES  # cut, even mid-character
    why = deadletters.describe(found)
    assert (why.origin, why.reason, why.source, why.subscriber) == (
        "ingest",
        "malformed_json",
        "cw",
        None,
    )


def test_a_delivery_dead_letter_names_the_subscriber_the_attempts_and_where_it_was_read() -> None:
    headers = deadletters.delivery_headers(
        "crm",
        "e1",
        reason="delivery_exhausted",
        attempts=3,
        status=503,
        error="HTTP 503",
        topic="chat.events",
        offset=41,
    )
    found = dict(headers)
    assert found == {
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
    why = deadletters.describe(found)
    assert (why.origin, why.subscriber, why.attempts, why.last_status, why.event_id) == (
        "delivery",
        "crm",
        3,
        503,
        "e1",
    )
    assert deadletters.made_for(headers, b"crm")
    assert not deadletters.made_for(headers, b"other")


def test_a_missing_status_and_error_are_empty_headers_and_read_back_as_none() -> None:
    headers = dict(
        deadletters.delivery_headers(
            "crm", "e1", reason="delivery_crashed", attempts=0, status=None, error=None,
            topic="t", offset=0,
        )
    )  # fmt: skip
    assert headers["relay-last-status"] == b"" and headers["relay-error"] == b""
    why = deadletters.describe(headers)
    assert why.last_status is None and why.error is None and why.attempts == 0
