"""Edges of source authentication: odd bytes, the window's edge, what the sender is told."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

import pytest

from relay.config import Source
from relay.ingress.auth import AuthError, SourceAuth, presented_token, token_matches
from relay.providers.base import SignatureError
from relay.providers.chatwoot.signature import verify_signature

BODY = b'{"event":"message_created"}'
NOW = 1_700_000_000.0
UNDECODABLE = b"\xff\xfe".decode("utf-8", "surrogateescape")  # how aiohttp keeps such bytes


def sign(secret: str, timestamp: str, body: bytes = BODY) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def test_undecodable_bytes_in_a_token_are_a_wrong_token_not_an_error() -> None:
    assert not token_matches(UNDECODABLE, ["tok-1"])
    assert not token_matches("tok-1" + UNDECODABLE, ["tok-1"])


def test_undecodable_bytes_in_a_signature_are_a_mismatch_not_an_error() -> None:
    stamp = str(int(NOW))
    with pytest.raises(SignatureError) as refused:
        verify_signature("s", BODY, "sha256=" + UNDECODABLE, stamp, 300, now=NOW)
    assert str(refused.value) == "X-Chatwoot-Signature does not match the body"


def test_a_bearer_token_after_extra_spaces() -> None:
    assert presented_token({}, {"Authorization": "Bearer  tok-1 "}) == "tok-1"
    assert presented_token({}, {"Authorization": "bearer tok-1"}) == "tok-1"


@pytest.mark.parametrize("age", [-300, 300])
def test_the_edge_of_the_window_is_inside(age: int) -> None:
    stamp = str(int(NOW) - age)
    verify_signature("s", BODY, sign("s", stamp), stamp, 300, now=NOW)


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
        verify_signature("s", BODY, signature, timestamp, 300, now=NOW)
    assert str(refused.value) == told


def refusal(check: Callable[[], None]) -> str:
    with pytest.raises(AuthError) as refused:
        check()
    return str(refused.value)


def test_an_allowlist_written_with_host_bits_covers_its_network() -> None:
    auth = SourceAuth(Source(provider="chatwoot", allow_cidrs=["10.1.2.3/24", "::1/128"]))
    auth.check_peer("10.1.2.200")
    auth.check_peer("::1")
    told = "the sender's address is not allowed"
    assert refusal(lambda: auth.check_peer("10.1.3.1")) == told
    assert refusal(lambda: auth.check_peer(None)) == told  # no peer address: refused
    assert refusal(lambda: auth.check_peer("not-an-address")) == told


def test_what_a_sender_without_the_right_token_is_told() -> None:
    auth = SourceAuth(Source(provider="chatwoot", tokens=["tok-1"]))
    auth.check_token({"token": "tok-1"}, {})
    assert refusal(lambda: auth.check_token({}, {})) == (
        "missing token (?token=, X-Relay-Token or Authorization: Bearer)"
    )
    assert refusal(lambda: auth.check_token({"token": "tok-2"}, {})) == "invalid token"
