"""Property: any JSON at all gives canonical events or a clear refusal, never a crash."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay.cloudevents import encode
from relay.providers import MalformedBody, Unmappable
from relay.providers.chatwoot import EVENT_TYPES
from relay.providers.plugchat import KINDS
from tests.factories import normalize

# Keys the normalizers look at, so generated bodies reach deep into their code.
KEYS = [
    "event",
    "id",
    "display_id",
    "content",
    "message_type",
    "content_type",
    "private",
    "created_at",
    "updated_at",
    "status",
    "sender",
    "contact",
    "conversation",
    "account",
    "account_id",
    "inbox",
    "meta",
    "assignee",
    "team",
    "messages",
    "attachments",
    "file_type",
    "data_url",
    "changed_attributes",
    "previous_value",
    "current_value",
    "user",
    "is_private",
    "event_info",
    "current_conversation",
    "phone_number",
    "type",
    "instanceId",
    "messageId",
    "momment",
    "phone",
    "fromMe",
    "fromApi",
    "isGroup",
    "chatLid",
    "participantPhone",
    "text",
    "message",
    "image",
    "audio",
    "video",
    "document",
    "location",
    "latitude",
    "sticker",
    "reaction",
    "referencedMessage",
    "buttonsResponseMessage",
    "listResponseMessage",
    "ids",
    "error",
    "zaapId",
    "attendance",
    "attendanceNumber",
    "customer",
    "chat",
    "attendanceCategory",
    "attendanceCategories",
    "operatorReport ",
    "endTime",
    "startTime",
    "waitingMessage",
    "notification",
    "contact_inbox",
    "labels",
    "custom_attributes",
    "timestamp",
]
EVENTS = [*EVENT_TYPES, "automation_event.message_created", "nope"]
CALLBACKS = [
    "ReceivedCallback",
    "MessageStatusCallback",
    "DeliveryCallback",
    "DisconnectedCallback",
    "receivedcallback",
    "Other",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(EVENTS + CALLBACKS + ["554499999999", "1@lid", "x-group", "READ", "FINISH"])
    | st.sampled_from([1651065481865, 1651065481, "2024-01-01T00:00:00Z"])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), inner, max_size=6)
    ),
    max_leaves=30,
)
bodies = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=10) | json_values


def check(provider: str, payload: Any, kind: str | None = None) -> None:
    body = json.dumps(payload).encode()
    try:
        events = normalize(provider, body, kind=kind)
    except (Unmappable, MalformedBody):
        return
    for event in events:
        encoded = encode(event)
        assert json.loads(encoded)["id"] == event.id


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(bodies, st.sampled_from(EVENTS))
def test_chatwoot_never_crashes(payload: Any, event: str) -> None:
    if isinstance(payload, dict):
        payload["event"] = event
    check("chatwoot", payload)


@FUZZ
@given(bodies, st.sampled_from(KINDS), st.sampled_from([*CALLBACKS, None]))
def test_plugchat_never_crashes(payload: Any, kind: str, callback: str | None) -> None:
    if isinstance(payload, dict) and callback is not None:
        payload["type"] = callback
    check("plugchat", payload, kind=kind)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(["chatwoot", "plugchat"]))
def test_arbitrary_bytes_are_refused_cleanly(body: bytes, provider: str) -> None:
    with contextlib.suppress(Unmappable, MalformedBody):
        normalize(provider, body, kind="receiveMessage")
