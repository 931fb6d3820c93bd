"""Builders of the things tests feed relay: inbound webhooks, canonical events, bus records,
configurations, live settings, a reloader."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from relay.app.reload import Reloader
from relay.bus import Record
from relay.bus.memory import MemoryBus
from relay.cloudevents import encode
from relay.config import Config, load
from relay.events import CloudEvent
from relay.ingress.guard import ConnectionGuard
from relay.ingress.state import IngressSettings, IngressState, live_for
from relay.live import Current
from relay.pipeline import Pipeline
from relay.providers import NORMALIZERS, Inbound
from tests.support import FIXTURES, make_config, unique

if TYPE_CHECKING:
    from tests.broker import Broker

RECEIVED_AT = "2030-01-01T00:00:00.000Z"
ADMIN_TOKEN = "console-admin-token-0123456789"


def normalize(
    provider: str, body: bytes, kind: str | None = None, **extra: str
) -> list[CloudEvent]:
    """What ``provider``'s normalizer makes of ``body`` (source ``src`` unless given)."""
    inbound = Inbound(
        source=extra.get("source", "src"),
        body=body,
        received_at=RECEIVED_AT,
        kind=kind,
        delivery_id=extra.get("delivery_id"),
    )
    return NORMALIZERS[provider](inbound)


def chatwoot_signed(body: bytes, secret: str, at: int | str | None = None) -> dict[str, str]:
    """The headers Chatwoot signs ``body`` with: HMAC-SHA256 of ``"<timestamp>.<body>"``
    under ``secret``, at ``at`` (Unix seconds; default now)."""
    timestamp = str(int(time.time()) if at is None else at)
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return {
        "X-Chatwoot-Signature": f"sha256={digest.hexdigest()}",
        "X-Chatwoot-Timestamp": timestamp,
    }


def chatwoot_message(number: int, conversation: int | None = None) -> bytes:
    """A Chatwoot message_created body; distinct numbers give distinct events."""
    return json.dumps(
        {
            "event": "message_created",
            "id": number,
            "content": f"message {number}",
            "message_type": "incoming",
            "account": {"id": 1},
            "conversation": {"id": number if conversation is None else conversation},
        }
    ).encode()


def chat_event(conversation: int, message: int, direction: str = "incoming") -> CloudEvent:
    """A Chatwoot ``message_created`` of source ``nexloo``, keyed by its conversation."""
    body = {
        "event": "message_created",
        "id": message,
        "content": f"message {message}",
        "message_type": direction,
        "account": {"id": 1},
        "conversation": {"id": conversation},
    }
    inbound = Inbound(source="nexloo", body=json.dumps(body).encode(), received_at="-")
    [event] = NORMALIZERS["chatwoot"](inbound)
    return event


def records(topic: str, events: list[CloudEvent]) -> list[Record]:
    """The records relay's ingress would publish for ``events`` (structured mode)."""
    return [
        Record(topic=topic, value=encode(e), key=e.partitionkey.encode(), headers=())
        for e in events
    ]


def admin_config(tmp_path: Path, url: str, token: bool = True, kafka: Broker | None = None) -> str:
    """A relay config with the admin API on (or off), a subscriber at ``url`` that never
    succeeds quickly, the embedded log unless a broker is given."""
    admin = f"admin: {{token: {ADMIN_TOKEN}}}\n" if token else ""
    bus = (
        f'kafka: {{bootstrap_servers: "{kafka.bootstrap}", idempotence: false}}\n'
        f"topics: {{events: {unique('ad.events')}, raw: {unique('ad.raw')}, "
        f"deadletter: {unique('ad.dl')}, attempts: {unique('ad.attempts')}}}\n"
        if kafka is not None
        else ""
    )
    return (
        f"data_dir: {tmp_path / 'var'}\n"
        f"{admin}{bus}"
        "sources: {nexloo: {provider: chatwoot, tokens: [t0k3n]}}\n"
        "subscribers:\n"
        f"  - {{name: crm, url: '{url.replace('http://', 'http://user:pw@')}?key=s3cr3t',"
        " start_from: earliest,"
        " retry: {max_attempts: 2, initial: 10ms, max: 20ms, jitter: false},"
        " secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}\n"
    )


def kafka_config(broker: Broker, topics: dict[str, str], subscribers: str) -> Config:
    """Delivery over the test broker to ``subscribers`` (YAML list items), on ``topics``,
    with a consumer group that notices a lost member within a second."""
    return make_config(
        f"""
data_dir: {topics["data_dir"]}
kafka: {{bootstrap_servers: "{broker.bootstrap}", idempotence: false,
        session_timeout_ms: 1000, heartbeat_interval_ms: 300}}
topics: {{events: {topics["events"]}, deadletter: {topics["dead"]}}}
subscribers:
{subscribers}
"""
    )


def live_settings(yaml_text: str = "{}", **changes: Any) -> Current[IngressSettings]:
    """A holder of the live settings of a configuration (default: the defaults), with
    ``changes`` to the fields of :class:`relay.live.Live` (``max_events=5``, ...)."""
    live = live_for(make_config(yaml_text))
    return Current(msgspec.structs.replace(live, **changes))


@dataclass
class Reloadable:
    """A reloader and what reads the live settings it swaps, built as relay.app builds them."""

    reloader: Reloader
    state: IngressState
    pipeline: Pipeline
    guard: ConnectionGuard


def reloader_for(path: Path, holder: type[Current[Any]] = Current) -> Reloadable:
    """A reloader of the file's configuration and the parts that read what a reload changes
    (a pipeline on the memory bus, the ingress state, the connection guard), all through one
    ``holder``; no delivery."""
    config = load(path)
    current = holder(live_for(config))
    pipeline = Pipeline(MemoryBus(), current, config.topics)
    state = IngressState(pipeline, current)
    reloader = Reloader(config, path, current, None)
    return Reloadable(reloader, state, pipeline, ConnectionGuard(current))


def _fixtures() -> list[tuple[str, str, str | None]]:
    """(relative path, provider, kind) of every webhook body under tests/fixtures/."""
    found: list[tuple[str, str, str | None]] = []
    for path in sorted((FIXTURES / "chatwoot").rglob("*.json")):
        if not path.name.endswith(".meta.json"):
            found.append((path.relative_to(FIXTURES).as_posix(), "chatwoot", None))
    for path in sorted((FIXTURES / "plugchat").glob("*/*.json")):
        found.append((path.relative_to(FIXTURES).as_posix(), "plugchat", path.parent.name))
    return found


FIXTURE_FILES = _fixtures()
"""(relative path, provider, kind) of every webhook body under tests/fixtures/."""


def fixture_events(relative: str, provider: str, kind: str | None) -> Iterator[dict[str, Any]]:
    """The canonical events (as JSON objects) of one fixture body, from source ``acme``."""
    body = (FIXTURES / relative).read_bytes()
    delivery = "6f1c2b9e-8d4a-4c3e-9b7a-2e5f1d0c8a43" if provider == "chatwoot" else None
    extra = {"delivery_id": delivery} if delivery else {}
    for event in normalize(provider, body, kind, source="acme", **extra):
        yield json.loads(encode(event))
