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
)


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
    digest = hmac.new(b"s", f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    auth = SourceAuth(Source(provider="chatwoot", signing_secret="s"))
    good = {"X-Chatwoot-Signature": f"sha256={digest}", "X-Chatwoot-Timestamp": now}
    auth.check_signature(body, good)
    with pytest.raises(AuthError, match="does not match"):
        auth.check_signature(body + b" ", good)
    with pytest.raises(AuthError, match="missing"):
        auth.check_signature(body, {})
