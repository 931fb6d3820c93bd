"""Standard Webhooks signatures (https://www.standardwebhooks.com).

``webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``, one
``v1,…`` entry per secret (space-separated) so secrets can rotate.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Sequence


def sign(keys: Sequence[bytes], message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    if len(keys) == 1:  # the usual case, on the hot path: one-shot C HMAC, no generator
        return "v1," + base64.b64encode(hmac.digest(keys[0], signed, "sha256")).decode()
    return " ".join(
        "v1," + base64.b64encode(hmac.digest(key, signed, "sha256")).decode() for key in keys
    )


def headers(keys: Sequence[bytes], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers (no signature when there are no keys)."""
    result = {"webhook-id": message_id, "webhook-timestamp": str(timestamp)}
    if keys:
        result["webhook-signature"] = sign(keys, message_id, timestamp, body)
    return result


def add_headers(
    into: dict[str, str], keys: Sequence[bytes], message_id: str, timestamp: int, body: bytes
) -> None:
    """:func:`headers`, written into an existing dict (one dict per attempt, not two)."""
    into["webhook-id"] = message_id
    into["webhook-timestamp"] = str(timestamp)
    if keys:
        into["webhook-signature"] = sign(keys, message_id, timestamp, body)
