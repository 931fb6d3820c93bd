"""Secrets are compared in constant time (DESIGN §2): through ``hmac.compare_digest``.

A timing side channel is not something a functional test can see, so these check the
mechanism: every comparison of a presented secret goes through ``compare_digest`` and its
answer decides. A spy wraps the real function; nothing else is replaced.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

import pytest

from relay.ingress.auth import token_matches
from relay.providers.base import SignatureError
from relay.providers.chatwoot.signature import verify_signature

Calls = list[tuple[bytes, bytes]]


@pytest.fixture
def compare_digest_calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    calls: Calls = []
    real: Callable[[bytes, bytes], bool] = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    return calls


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def test_a_chatwoot_signature_is_compared_in_constant_time(compare_digest_calls: Calls) -> None:
    body, now = b'{"event":"message_created"}', str(int(time.time()))
    good = signature("s3cret", now, body)
    verify_signature("s3cret", body, good, now, 300)
    assert compare_digest_calls == [(good.removeprefix("sha256=").encode(),) * 2]

    compare_digest_calls.clear()
    with pytest.raises(SignatureError):
        verify_signature("s3cret", body, signature("other", now, body), now, 300)
    assert len(compare_digest_calls) == 1  # refused by compare_digest, not by ==


def test_a_token_is_compared_with_every_configured_token(compare_digest_calls: Calls) -> None:
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
