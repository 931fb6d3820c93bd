"""Library log records: redaction and the bad-request rate limit."""

from __future__ import annotations

import logging
import time

from relay.logs import _RateLimit, redact


def test_redact_masks_tokens_in_urls_and_headers() -> None:
    text = (
        "GET /v1/hooks/x?a=1&token=s3cr3t-value&b=2 {'Authorization': 'Bearer abc.def', "
        "'X-Relay-Token': 'tok123', 'api_access_token': 'cw-tok'} Basic-free"
    )
    masked = redact(text)
    for secret in ("s3cr3t-value", "abc.def", "tok123", "cw-tok"):
        assert secret not in masked
    assert "token=***&b=2" in masked and "Bearer ***" in masked
    assert redact("nothing to hide here") == "nothing to hide here"


def test_the_rate_limit_lets_a_few_through_then_counts_what_it_dropped() -> None:
    limit = _RateLimit(limit=2, window=0.05)

    def record() -> logging.LogRecord:
        return logging.LogRecord("aiohttp.server", logging.ERROR, "f", 1, "Error", (), None)

    passed = [limit.filter(record()) for _ in range(5)]
    assert passed == [True, True, False, False, False]
    time.sleep(0.06)  # a new window
    first = record()
    assert limit.filter(first)
    assert getattr(first, "suppressed", None) == 3
    second = record()
    assert limit.filter(second) and not hasattr(second, "suppressed")
