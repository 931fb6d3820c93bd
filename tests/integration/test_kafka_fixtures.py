"""Every provider fixture, posted over HTTP, comes out of Kafka as a canonical CloudEvent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp.test_utils import TestClient

from relay.events import CloudEvent
from relay.providers import NORMALIZERS, Inbound
from tests.broker import Broker
from tests.support import FIXTURES, consume_ids, make_config, relay_client, unique

pytestmark = pytest.mark.integration

CHATWOOT = sorted(p for p in (FIXTURES / "chatwoot").glob("*.json"))
PLUGCHAT = sorted((FIXTURES / "plugchat").glob("*/*.json"))


def case_id(path: Path) -> str:
    return str(path.relative_to(FIXTURES).with_suffix(""))


@pytest.fixture
def events_topic() -> str:
    # One topic per case: the seed examples describe the same attendance, so they share ids.
    return unique("fixtures.events")


@pytest.fixture
async def client(
    broker: Broker, events_topic: str, tmp_path: Path
) -> AsyncIterator[TestClient[Any, Any]]:
    config = make_config(
        f"""
data_dir: {tmp_path}
kafka: {{bootstrap_servers: "{broker.bootstrap}", idempotence: false}}
sources:
  nexloo: {{provider: chatwoot}}
  plugchat: {{provider: plugchat}}
topics: {{events: {events_topic}, raw: {unique("fixtures.raw")}}}
"""
    )
    async with relay_client(config) as client:
        yield client


async def check_roundtrip(
    client: TestClient[Any, Any], broker: Broker, topic: str, path: str, body: bytes
) -> list[CloudEvent]:
    response = await client.post(path, data=body, headers={"Content-Type": "application/json"})
    assert response.status == 202, await response.text()
    answer = await response.json()
    assert answer["accepted"] >= 1, answer
    found = await consume_ids(broker.bootstrap, topic, set(answer["ids"]))
    events = [msgspec.json.decode(found[event_id], type=CloudEvent) for event_id in answer["ids"]]
    for event in events:
        assert event.specversion == "1.0"
        assert event.time.endswith("Z")
        assert event.partitionkey.startswith(event.data.source)
    return events


def offline(provider: str, source: str, body: bytes, kind: str | None = None) -> list[CloudEvent]:
    return NORMALIZERS[provider](Inbound(source=source, body=body, received_at="-", kind=kind))


@pytest.mark.parametrize("path", CHATWOOT, ids=case_id)
async def test_chatwoot_fixture(
    client: TestClient[Any, Any], broker: Broker, events_topic: str, path: Path
) -> None:
    body = path.read_bytes()
    events = await check_roundtrip(client, broker, events_topic, "/v1/hooks/nexloo", body)
    # what came out of Kafka is what the offline normalizer makes of the same body
    assert [e.data for e in events] == [e.data for e in offline("chatwoot", "nexloo", body)]


@pytest.mark.parametrize("path", PLUGCHAT, ids=case_id)
async def test_plugchat_fixture(
    client: TestClient[Any, Any], broker: Broker, events_topic: str, path: Path
) -> None:
    kind = path.parent.name
    body = path.read_bytes()
    events = await check_roundtrip(client, broker, events_topic, f"/v1/hooks/plugchat/{kind}", body)
    assert [e.data for e in events] == [e.data for e in offline("plugchat", "plugchat", body, kind)]
