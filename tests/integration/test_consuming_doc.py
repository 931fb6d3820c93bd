"""docs/consuming.md's consumer, run as written against a real broker.

Binary mode, where aiokafka's header list carries the attributes; structured records are
what every other Kafka test reads (and ``relay.decode_event`` of both is unit-tested)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from relay.events import CloudEvent
from tests.broker import Broker
from tests.docs import executed
from tests.support import fixture_bytes, make_config, relay_client, unique

pytestmark = pytest.mark.integration


def doc_namespace() -> dict[str, Any]:
    [block] = executed("consumer")
    namespace: dict[str, Any] = {"__name__": "consuming_doc"}
    exec(compile(block.text, block.where, "exec"), namespace)
    return namespace


async def test_the_documented_consumer_reads_typed_events(
    broker: Broker, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    mode = "binary"
    topic = unique("doc.events")
    config = make_config(
        f"""
data_dir: {tmp_path}
kafka: {{bootstrap_servers: "{broker.bootstrap}", idempotence: false, cloudevents_mode: {mode}}}
sources: {{plugchat: {{provider: plugchat}}}}
topics: {{events: {topic}, raw: {unique("doc.raw")}}}
"""
    )
    bodies = {
        "location": fixture_bytes("plugchat/receiveMessage/location.json"),
        "order": fixture_bytes("plugchat/receiveMessage/order_cart.json"),
    }
    async with relay_client(config) as client:
        for body in bodies.values():
            response = await client.post(
                "/v1/hooks/plugchat/receiveMessage",
                data=body,
                headers={"Content-Type": "application/json"},
            )
            assert response.status == 202
    namespace = doc_namespace()
    got: list[CloudEvent] = []
    documented = namespace["handle"]

    async def handle(event: CloudEvent) -> bool:
        await documented(event)
        got.append(event)
        return len(got) < len(bodies)

    await namespace["consume"](broker.bootstrap, topic, handle, group_id=unique("doc.group"))
    printed = capsys.readouterr().out
    assert "+5544999990001 is at -23.4205 -51.9386" in printed
    assert "+5544999990001 ordered 209.7 BRL" in printed
    assert [e.data.message.kind for e in got if e.data.message] == ["location", "order"]
