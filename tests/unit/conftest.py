"""Fixtures shared by unit tests of more than one module."""

from __future__ import annotations

import hmac
from collections.abc import Callable

import pytest

Calls = list[tuple[bytes, bytes]]


@pytest.fixture
def compare_digest_calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """Every ``hmac.compare_digest`` call, through a spy that wraps the real function.

    Secrets are compared in constant time (DESIGN §2). A timing side channel is not
    something a functional test can see, so the tests check the mechanism: every
    comparison of a presented secret goes through ``compare_digest``, and its answer
    decides (``ingress/test_auth.py`` for tokens, ``providers/chatwoot/test_signature.py``
    for signatures).
    """
    calls: Calls = []
    real: Callable[[bytes, bytes], bool] = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    return calls
