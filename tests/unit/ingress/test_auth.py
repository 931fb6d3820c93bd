from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from relay.config import Source
from relay.ingress.auth import (
    AuthError,
    SourceAuth,
    presented_token,
    token_matches,
    verify_chatwoot_signature,
)

BODY = b'{"event":"message_created","content":"\\u003cb\\u003e"}'


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def test_token_locations() -> None:
    assert presented_token({"token": "a"}, {}) == "a"
    assert presented_token({}, {"X-Relay-Token": "b"}) == "b"
    assert presented_token({}, {"Authorization": "Bearer c"}) == "c"
    assert presented_token({}, {"Authorization": "Basic Zm9v"}) is None
    assert presented_token({}, {}) is None


def test_tokens_rotate() -> None:
    assert token_matches("new", ["old", "new"])
    assert not token_matches("neww", ["old", "new"])


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
    with pytest.raises(AuthError, match=message):
        verify_chatwoot_signature("s", BODY, signature, stamp, 300)


def test_cidr_allowlist() -> None:
    auth = SourceAuth(Source(provider="chatwoot", allow_cidrs=["10.0.0.0/8", "::1/128"]))
    auth.check_peer("10.1.2.3")
    auth.check_peer("::1")
    with pytest.raises(AuthError):
        auth.check_peer("192.168.0.1")
    with pytest.raises(AuthError):
        auth.check_peer(None)


def test_open_source() -> None:
    assert SourceAuth(Source(provider="plugchat")).is_open
    assert not SourceAuth(Source(provider="plugchat", tokens=["t"])).is_open


def test_signature_of_a_real_chatwoot_delivery() -> None:
    """Exact bytes and headers as Chatwoot's Webhooks::Trigger sends them."""
    import json

    from tests.support import fixture_bytes

    meta = json.loads(fixture_bytes("chatwoot/signed/message_created.meta.json"))
    body = fixture_bytes("chatwoot/signed/message_created.body.json")
    headers = meta["headers"]
    timestamp = headers["X-Chatwoot-Timestamp"]
    verify_chatwoot_signature(
        meta["secret"], body, headers["X-Chatwoot-Signature"], timestamp, 300, now=int(timestamp)
    )
    with pytest.raises(AuthError):
        verify_chatwoot_signature(
            meta["secret"],
            body + b"\n",
            headers["X-Chatwoot-Signature"],
            timestamp,
            300,
            now=int(timestamp),
        )
