"""Signing deliveries: Standard Webhooks signatures, one per secret during a rotation."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import standardwebhooks
from hypothesis import given
from hypothesis import strategies as st

from relay.config import webhook_secret
from relay.delivery.signing import Signer, headers, sign

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@given(st.text(max_size=300), st.text(min_size=1, max_size=30), st.integers(0, 2**32))
def test_signature_matches_the_reference_library(
    body: str, message_id: str, timestamp: int
) -> None:
    signature = sign([webhook_secret(SECRET)], message_id, timestamp, body.encode())
    moment = datetime.fromtimestamp(timestamp, UTC)
    assert signature == standardwebhooks.Webhook(SECRET).sign(message_id, moment, body)


def test_rotation_sends_one_signature_per_secret() -> None:
    old, new = webhook_secret(SECRET), webhook_secret("whsec_" + "A" * 32)
    now = int(time.time())
    result = headers([old, new], "evt_1", now, b"{}")
    assert len(result["webhook-signature"].split(" ")) == 2
    for secret in (SECRET, "whsec_" + "A" * 32):
        standardwebhooks.Webhook(secret).verify(b"{}", result)
    assert "webhook-signature" not in headers([], "evt_1", now, b"{}")


def test_a_signer_without_keys_is_false_and_adds_no_signature() -> None:
    assert not Signer([])
    assert Signer([b"k"])
    into: dict[str, str] = {}
    Signer([]).add_headers(into, "msg_1", 1_700_000_000, b"{}")
    assert into == {"webhook-id": "msg_1", "webhook-timestamp": "1700000000"}
