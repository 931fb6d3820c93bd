from __future__ import annotations

from collections.abc import Callable

import pytest

from relay.events import CloudEvent
from tests.factories import normalize
from tests.support import fixture_bytes


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
