from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from relay.config import Source
from relay.ingress.auth import (
    AuthError,
    SourceAuth,
    presented_token,
    token_matches,
)
from tests.factories import chatwoot_signed


def test_token_locations() -> None:
    assert presented_token({"token": "a"}, {}) == "a"
    assert presented_token({}, {"X-Relay-Token": "b"}) == "b"
    assert presented_token({}, {"Authorization": "Bearer c"}) == "c"
    assert presented_token({}, {"Authorization": "Basic Zm9v"}) is None
    assert presented_token({}, {}) is None


def test_tokens_rotate() -> None:
    assert token_matches("new", ["old", "new"])
    assert not token_matches("neww", ["old", "new"])


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


def test_signature_checked_through_the_source_provider() -> None:
    now = str(int(time.time()))
    body = b'{"event":"message_created"}'
    auth = SourceAuth(Source(provider="chatwoot", signing_secret="s"))
    good = chatwoot_signed(body, "s", now)
    auth.check_signature(body, good)
    with pytest.raises(AuthError, match="does not match"):
        auth.check_signature(body + b" ", good)
    with pytest.raises(AuthError, match="missing"):
        auth.check_signature(body, {})


def test_a_source_without_a_signing_secret_checks_no_signature() -> None:
    # Chatwoot can verify signatures, but this source has no secret: nothing is required
    SourceAuth(Source(provider="chatwoot")).check_signature(b"{}", {})
    SourceAuth(Source(provider="plugchat", tokens=["t"])).check_signature(b"{}", {})


UNDECODABLE = b"\xff\xfe".decode("utf-8", "surrogateescape")  # how aiohttp keeps such bytes


def test_undecodable_bytes_in_a_token_are_a_wrong_token_not_an_error() -> None:
    assert not token_matches(UNDECODABLE, ["tok-1"])
    assert not token_matches("tok-1" + UNDECODABLE, ["tok-1"])


def test_a_bearer_token_after_extra_spaces() -> None:
    assert presented_token({}, {"Authorization": "Bearer  tok-1 "}) == "tok-1"
    assert presented_token({}, {"Authorization": "bearer tok-1"}) == "tok-1"


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


def test_a_token_is_compared_with_every_configured_token(
    compare_digest_calls: list[tuple[bytes, bytes]],
) -> None:
    """No early exit on the first match: the time does not tell which token matched."""
    assert token_matches("first", ["first", "second", "third"])
    assert compare_digest_calls == [
        (b"first", b"first"),
        (b"first", b"second"),
        (b"first", b"third"),
    ]
    compare_digest_calls.clear()
    assert not token_matches("none", ["first", "second"])
    assert len(compare_digest_calls) == 2
