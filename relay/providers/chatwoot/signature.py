"""Chatwoot's webhook signature (v4.12+): ``X-Chatwoot-Signature: sha256=<hex HMAC-SHA256
of "<X-Chatwoot-Timestamp>.<raw body>">``, keyed with the webhook secret's own bytes."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from relay.providers.base import SignatureError

SIGNATURE_HEADER = "X-Chatwoot-Signature"
TIMESTAMP_HEADER = "X-Chatwoot-Timestamp"


def verify_signature(
    secret: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    tolerance: float,
    now: float | None = None,
) -> None:
    """Raise :class:`SignatureError` unless ``signature`` signs ``timestamp.body`` recently."""
    if not signature or not timestamp:
        raise SignatureError("missing X-Chatwoot-Signature or X-Chatwoot-Timestamp")
    try:
        sent_at = int(timestamp.strip())
    except ValueError:
        raise SignatureError("X-Chatwoot-Timestamp is not Unix seconds") from None
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance:
        raise SignatureError("X-Chatwoot-Timestamp is outside the allowed window")
    expected = hmac.new(
        secret.encode(),
        timestamp.strip().encode("utf-8", "surrogateescape") + b"." + body,
        hashlib.sha256,
    ).hexdigest()
    given = signature.strip()
    if given.lower().startswith("sha256="):
        given = given[len("sha256=") :]
    if not hmac.compare_digest(given.lower().encode("utf-8", "surrogateescape"), expected.encode()):
        raise SignatureError("X-Chatwoot-Signature does not match the body")


def verify(secret: str, body: bytes, headers: Mapping[str, str], tolerance: float) -> None:
    """The :class:`~relay.providers.base.Provider` verifier: reads its two headers."""
    verify_signature(
        secret, body, headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER), tolerance
    )
