"""POST a webhook → consume from the real broker → assert the canonical event."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from relay.cloudevents import decode
from tests.broker import Broker
from tests.support import consume, drain, make_config, relay_client, unique

pytestmark = pytest.mark.integration

TOKEN = "s3cret-token"


@dataclass(frozen=True)
class Topics:
    events: str
    raw: str
    deadletter: str
    messages: str
    attendance: str
    incoming: str


@pytest.fixture
def topics() -> Topics:
    return Topics(
        events=unique("events"),
        raw=unique("raw"),
        deadletter=unique("dead"),
        messages=unique("messages"),
        attendance=unique("attendance"),
        incoming=unique("incoming"),
    )


@pytest.fixture
async def client(
    broker: Broker, topics: Topics, tmp_path: Path
) -> AsyncIterator[TestClient[Any, Any]]:
    config = make_config(
        f"""
data_dir: {tmp_path}
kafka: {{bootstrap_servers: "{broker.bootstrap}", idempotence: false}}
sources:
  nexloo: {{provider: chatwoot, tokens: ["{TOKEN}"]}}
  plugchat: {{provider: plugchat, tokens: ["{TOKEN}"]}}
topics: {{events: {topics.events}, raw: {topics.raw}, deadletter: {topics.deadletter}}}
routes:
  - {{name: messages, match: {{type: "chat.message.*"}}, topic: {topics.messages}}}
  - name: incoming
    match: {{type: chat.message.created, where: {{data.message.direction: incoming}}}}
    topic: {topics.incoming}
  - name: attendance
    match: {{type: chat.conversation.status_changed, source: "plug*"}}
    topic: {topics.attendance}
"""
    )
    async with relay_client(config) as client:
        yield client


MESSAGE_CREATED = {
    "event": "message_created",
    "id": 991,
    "content": "Olá, preciso de ajuda",
    "created_at": "2024-05-02T12:00:00.000Z",
    "message_type": "incoming",
    "private": False,
    "account": {"id": 3, "name": "Nexloo"},
    "inbox": {"id": 7, "name": "WhatsApp"},
    "sender": {"id": 42, "name": "Maria", "phone_number": "+55 44 99999-9999"},
    "conversation": {"id": 4711, "inbox_id": 7, "status": "open", "account_id": 3},
}
CONVERSATION_CREATED = {
    "event": "conversation_created",
    "id": 4712,
    "status": "pending",
    "account_id": 3,
    "inbox_id": 7,
    "created_at": 1714651200,
    "meta": {"sender": {"id": 42, "name": "Maria"}},
}


async def post(client: TestClient[Any, Any], path: str, payload: Any, **headers: str) -> Any:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    response = await client.post(
        path,
        data=body,
        headers={"Content-Type": "application/json", "X-Relay-Token": TOKEN, **headers},
    )
    return response.status, await response.json()


async def test_message_is_published_as_a_cloudevent(
    client: TestClient[Any, Any], broker: Broker, topics: Topics
) -> None:
    status, body = await post(client, "/v1/hooks/nexloo", MESSAGE_CREATED)
    assert status == 202
    assert body["accepted"] == 1 and len(body["ids"]) == 1

    [record] = await consume(broker.bootstrap, topics.messages, 1)
    event = decode(record.value)
    assert event.id == body["ids"][0]
    assert event.type == "chat.message.created"
    assert event.source == "relay/nexloo"
    assert event.partitionkey == "nexloo:4711"
    assert record.key == b"nexloo:4711"
    assert dict(record.headers)["content-type"].startswith(b"application/cloudevents+json")
    message = event.data.message
    assert message is not None
    assert (message.id, message.direction, message.text) == ("991", "incoming", body_text())
    assert event.data.contact is not None and event.data.contact.phone == "+5544999999999"
    assert event.time == "2024-05-02T12:00:00.000Z"


def body_text() -> str:
    return str(MESSAGE_CREATED["content"])


async def test_every_matching_route_publishes(
    client: TestClient[Any, Any], broker: Broker, topics: Topics
) -> None:
    status, _ = await post(client, "/v1/hooks/nexloo", MESSAGE_CREATED)
    assert status == 202
    [on_messages] = await consume(broker.bootstrap, topics.messages, 1)
    [on_incoming] = await consume(broker.bootstrap, topics.incoming, 1)
    assert on_messages.value == on_incoming.value
    # claimed by routes, so not on the default topic
    assert await drain(broker.bootstrap, topics.events, settle=0.5) == []


async def test_unclaimed_events_go_to_the_events_topic(
    client: TestClient[Any, Any], broker: Broker, topics: Topics
) -> None:
    status, _ = await post(client, "/v1/hooks/nexloo", CONVERSATION_CREATED)
    assert status == 202
    [record] = await consume(broker.bootstrap, topics.events, 1)
    event = decode(record.value)
    assert event.type == "chat.conversation.created"
    assert event.data.conversation is not None
    assert event.data.conversation.status == "pending"
    assert event.partitionkey == "nexloo:4712"


async def test_raw_topic_keeps_the_body_as_received(
    client: TestClient[Any, Any], broker: Broker, topics: Topics
) -> None:
    raw_body = json.dumps(MESSAGE_CREATED, indent=2).encode()
    status, _ = await post(client, "/v1/hooks/nexloo", raw_body, **{"X-Chatwoot-Delivery": "d-123"})
    assert status == 202
    [record] = await consume(broker.bootstrap, topics.raw, 1)
    assert record.value == raw_body
    assert record.key == b"nexloo"
    headers = dict(record.headers)
    assert headers["relay-source"] == b"nexloo"
    assert headers["relay-provider"] == b"chatwoot"
    assert headers["relay-delivery-id"] == b"d-123"
    assert headers["content-type"] == b"application/json"
    assert headers["relay-request-id"]
    assert headers["relay-received-at"].endswith(b"Z")


async def test_unmappable_body_is_deadlettered_and_accepted(
    client: TestClient[Any, Any], broker: Broker, topics: Topics
) -> None:
    payload = {"event": "inbox_exploded", "id": 1}
    status, body = await post(client, "/v1/hooks/nexloo", payload)
    assert status == 202
    assert body == {"accepted": 0, "ids": [], "deadlettered": "unknown_event"}
    [record] = await consume(broker.bootstrap, topics.deadletter, 1)
    assert json.loads(record.value) == payload
    headers = dict(record.headers)
    assert headers["relay-reason"] == b"unknown_event"
    assert b"inbox_exploded" in headers["relay-error"]
    [raw] = await consume(broker.bootstrap, topics.raw, 1)  # still on the raw topic too
    assert json.loads(raw.value) == payload


async def test_malformed_json_is_400_and_still_kept(
    client: TestClient[Any, Any], broker: Broker, topics: Topics
) -> None:
    status, body = await post(client, "/v1/hooks/nexloo", b'{"event": "message_created",')
    assert status == 400
    assert body["error"] == "malformed_json"
    [record] = await consume(broker.bootstrap, topics.deadletter, 1)
    assert record.value == b'{"event": "message_created",'
    assert dict(record.headers)["relay-reason"] == b"malformed_json"
    [raw] = await consume(broker.bootstrap, topics.raw, 1)  # kept on relay.raw as received
    assert raw.value == b'{"event": "message_created",'
    assert raw.key == b"nexloo"


async def test_the_same_delivery_twice_gives_the_same_id_and_one_event(
    client: TestClient[Any, Any], broker: Broker, topics: Topics
) -> None:
    _, first = await post(client, "/v1/hooks/nexloo", CONVERSATION_CREATED)
    _, second = await post(client, "/v1/hooks/nexloo", CONVERSATION_CREATED)
    assert first == second  # the retrying provider gets the same answer
    [record] = await drain(broker.bootstrap, topics.events, settle=0.5)  # deduplicated
    assert decode(record.value).id == first["ids"][0]
    assert len(await consume(broker.bootstrap, topics.raw, 2)) == 2  # both bodies kept


async def test_plugchat_status_callback_fans_out_one_event_per_id(
    client: TestClient[Any, Any], broker: Broker, topics: Topics
) -> None:
    payload = {
        "instanceId": "inst-1",
        "status": "READ",
        "ids": ["3EB0A", "3EB0B", "3EB0C"],
        "momment": 1714651200123,
        "phone": "554499999999",
        "type": "MessageStatusCallback",
    }
    status, body = await post(client, "/v1/hooks/plugchat/message-status", payload)
    assert status == 202 and body["accepted"] == 3
    records = await consume(broker.bootstrap, topics.messages, 3)
    events = sorted((decode(r.value) for r in records), key=lambda e: e.data.message.id or "")
    assert [e.data.message.id for e in events if e.data.message] == ["3EB0A", "3EB0B", "3EB0C"]
    assert {e.data.message.status for e in events if e.data.message} == {"read"}
    assert {r.key for r in records} == {b"plugchat:554499999999"}


async def test_binary_content_mode(broker: Broker, tmp_path: Path) -> None:
    """kafka.cloudevents_mode: binary — data as the value, attributes as ce_* headers."""
    from relay.cloudevents import from_binary

    topic = unique("binary.events")
    config = make_config(
        f"""
data_dir: {tmp_path}
kafka: {{bootstrap_servers: "{broker.bootstrap}", idempotence: false, cloudevents_mode: binary}}
sources: {{nexloo: {{provider: chatwoot}}}}
topics: {{events: {topic}}}
"""
    )
    async with relay_client(config) as client:
        response = await client.post(
            "/v1/hooks/nexloo",
            data=json.dumps(CONVERSATION_CREATED),
            headers={"Content-Type": "application/json"},
        )
        [event_id] = (await response.json())["ids"]
    [record] = await consume(broker.bootstrap, topic, 1)
    headers = dict(record.headers)
    assert headers["content-type"] == b"application/json"
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_id"] == event_id.encode()
    assert headers["ce_type"] == b"chat.conversation.created"
    assert json.loads(record.value)["conversation"]["id"] == "4712"  # the data alone
    event = from_binary(record.value, headers)
    assert event.id == event_id and event.partitionkey == "nexloo:4712"
