from __future__ import annotations

from collections.abc import Callable

import pytest

from relay.events import CloudEvent
from relay.providers import NORMALIZERS, Inbound
from tests.support import fixture_bytes

RECEIVED_AT = "2030-01-01T00:00:00.000Z"
Normalize = Callable[..., list[CloudEvent]]


def normalize(
    provider: str, body: bytes, kind: str | None = None, **extra: str
) -> list[CloudEvent]:
    inbound = Inbound(
        source=extra.get("source", "src"),
        body=body,
        received_at=RECEIVED_AT,
        kind=kind,
        delivery_id=extra.get("delivery_id"),
    )
    return NORMALIZERS[provider](inbound)


@pytest.fixture
def chatwoot() -> Callable[[str], CloudEvent]:
    def run(name: str) -> CloudEvent:
        [event] = normalize("chatwoot", fixture_bytes(f"chatwoot/{name}.json"))
        return event

    return run


@pytest.fixture
def plugchat() -> Callable[[str], list[CloudEvent]]:
    def run(path: str) -> list[CloudEvent]:
        kind = path.split("/")[0]
        return normalize("plugchat", fixture_bytes(f"plugchat/{path}.json"), kind=kind)

    return run
