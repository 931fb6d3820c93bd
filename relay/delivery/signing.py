"""Standard Webhooks signatures (https://www.standardwebhooks.com).

``webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">``, one
``v1,…`` entry per secret (space-separated) so secrets can rotate.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
from collections.abc import Sequence


def _b64(digest: bytes) -> str:
    return binascii.b2a_base64(digest, newline=False).decode()


class Signer:
    """:func:`sign` for one subscriber's keys, with each key's HMAC state computed once.

    A signature copies the keyed state (its inner and outer pads already hashed) and feeds
    it the prefix and the body, instead of setting the key up again and copying the body
    behind the prefix for every attempt.
    """

    __slots__ = ("_keyed",)

    def __init__(self, keys: Sequence[bytes]) -> None:
        self._keyed = [hmac.new(key, digestmod=hashlib.sha256) for key in keys]

    def __bool__(self) -> bool:
        return bool(self._keyed)

    def sign(self, message_id: str, timestamp: int, body: bytes) -> str:
        prefix = f"{message_id}.{timestamp}.".encode()
        signatures = []
        for keyed in self._keyed:
            mac = keyed.copy()
            mac.update(prefix)
            mac.update(body)
            signatures.append("v1," + _b64(mac.digest()))
        return signatures[0] if len(signatures) == 1 else " ".join(signatures)

    def add_headers(
        self, into: dict[str, str], message_id: str, timestamp: int, body: bytes
    ) -> None:
        """The Standard Webhooks headers, written into an existing dict."""
        into["webhook-id"] = message_id
        into["webhook-timestamp"] = str(timestamp)
        if self._keyed:
            into["webhook-signature"] = self.sign(message_id, timestamp, body)


def sign(keys: Sequence[bytes], message_id: str, timestamp: int, body: bytes) -> str:
    return Signer(keys).sign(message_id, timestamp, body)


def headers(keys: Sequence[bytes], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers (no signature when there are no keys)."""
    result: dict[str, str] = {}
    Signer(keys).add_headers(result, message_id, timestamp, body)
    return result
