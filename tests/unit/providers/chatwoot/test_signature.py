from __future__ import annotations

import json
import time

import pytest

from relay.providers import PROVIDERS, SignatureError
from relay.providers.chatwoot.signature import verify_signature as verify_chatwoot_signature
from tests.factories import chatwoot_signed
from tests.support import fixture_bytes

BODY = b'{"event":"message_created","content":"\\u003cb\\u003e"}'


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return chatwoot_signed(body, secret, timestamp)["X-Chatwoot-Signature"]


def test_valid_chatwoot_signature() -> None:
    now = int(time.time())
    verify_chatwoot_signature("s", BODY, sign("s", str(now), BODY), str(now), 300)


@pytest.mark.parametrize(
    ("signature", "timestamp", "message"),
    [
        (None, "1", "missing"),
        ("sha256=00", None, "missing"),
        ("sha256=00", "yesterday", "not Unix seconds"),
        ("sha256=00", "NOW", "does not match"),
        ("SIGN-OTHER-BODY", "NOW", "does not match"),
        ("SIGN", "OLD", "outside the allowed window"),
    ],
)
def test_bad_chatwoot_signatures(
    signature: str | None, timestamp: str | None, message: str
) -> None:
    now = int(time.time())
    stamp = {"NOW": str(now), "OLD": str(now - 3600)}.get(timestamp or "", timestamp)
    if signature == "SIGN":
        signature = sign("s", stamp or "", BODY)
    elif signature == "SIGN-OTHER-BODY":
        signature = sign("s", stamp or "", BODY + b" ")
    with pytest.raises(SignatureError, match=message):
        verify_chatwoot_signature("s", BODY, signature, stamp, 300)


def test_signature_of_a_real_chatwoot_delivery() -> None:
    """Exact bytes and headers as Chatwoot's Webhooks::Trigger sends them."""
    meta = json.loads(fixture_bytes("chatwoot/signed/message_created.meta.json"))
    body = fixture_bytes("chatwoot/signed/message_created.body.json")
    headers = meta["headers"]
    timestamp = headers["X-Chatwoot-Timestamp"]
    verify_chatwoot_signature(
        meta["secret"], body, headers["X-Chatwoot-Signature"], timestamp, 300, now=int(timestamp)
    )
    with pytest.raises(SignatureError):
        verify_chatwoot_signature(
            meta["secret"],
            body + b"\n",
            headers["X-Chatwoot-Signature"],
            timestamp,
            300,
            now=int(timestamp),
        )


def test_the_provider_verifies_from_its_headers() -> None:
    verify = PROVIDERS["chatwoot"].verify
    assert verify is not None and PROVIDERS["plugchat"].verify is None
    now = str(int(time.time()))
    verify(
        "s", BODY, {"X-Chatwoot-Signature": sign("s", now, BODY), "X-Chatwoot-Timestamp": now}, 300
    )
    with pytest.raises(SignatureError):
        verify(
            "t",
            BODY,
            {"X-Chatwoot-Signature": sign("s", now, BODY), "X-Chatwoot-Timestamp": now},
            300,
        )


EDGE_BODY = b'{"event":"message_created"}'
NOW = 1_700_000_000.0
UNDECODABLE = b"\xff\xfe".decode("utf-8", "surrogateescape")  # how aiohttp keeps such bytes


def test_undecodable_bytes_in_a_signature_are_a_mismatch_not_an_error() -> None:
    stamp = str(int(NOW))
    with pytest.raises(SignatureError) as refused:
        verify_chatwoot_signature("s", EDGE_BODY, "sha256=" + UNDECODABLE, stamp, 300, now=NOW)
    assert str(refused.value) == "X-Chatwoot-Signature does not match the body"


@pytest.mark.parametrize("age", [-300, 300])
def test_the_edge_of_the_window_is_inside(age: int) -> None:
    stamp = str(int(NOW) - age)
    verify_chatwoot_signature("s", EDGE_BODY, sign("s", stamp, EDGE_BODY), stamp, 300, now=NOW)


@pytest.mark.parametrize(
    ("signature", "timestamp", "told"),
    [
        (None, "1700000000", "missing X-Chatwoot-Signature or X-Chatwoot-Timestamp"),
        ("sha256=00", None, "missing X-Chatwoot-Signature or X-Chatwoot-Timestamp"),
        ("sha256=00", "soon", "X-Chatwoot-Timestamp is not Unix seconds"),
        ("sha256=00", "1699999000", "X-Chatwoot-Timestamp is outside the allowed window"),
        ("sha256=00", "1700000000", "X-Chatwoot-Signature does not match the body"),
    ],
)
def test_what_the_sender_is_told(signature: str | None, timestamp: str | None, told: str) -> None:
    with pytest.raises(SignatureError) as refused:
        verify_chatwoot_signature("s", EDGE_BODY, signature, timestamp, 300, now=NOW)
    assert str(refused.value) == told


def test_a_chatwoot_signature_is_compared_in_constant_time(
    compare_digest_calls: list[tuple[bytes, bytes]],
) -> None:
    body, now = b'{"event":"message_created"}', str(int(time.time()))
    good = sign("s3cret", now, body)
    verify_chatwoot_signature("s3cret", body, good, now, 300)
    assert compare_digest_calls == [(good.removeprefix("sha256=").encode(),) * 2]

    compare_digest_calls.clear()
    with pytest.raises(SignatureError):
        verify_chatwoot_signature("s3cret", body, sign("other", now, body), now, 300)
    assert len(compare_digest_calls) == 1  # refused by compare_digest, not by ==
