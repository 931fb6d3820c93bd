"""Normalizing is linear in the body's size, proved by counting executed Python bytecodes
(never by timing): the same adversarial shape at n and 8n must cost about 8x, not 64x."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.providers import MalformedBody, Unmappable
from relay.providers.base import parse_json_keeping_duplicates
from tests.factories import normalize

SCALE = 8
# linear cost grows ~SCALE times; quadratic ~SCALE**2. Allow constant overheads.
LINEAR_BOUND = SCALE * 2


def opcodes(run: Callable[[], Any]) -> int:
    """How many bytecodes ``run`` executes (C code, e.g. msgspec or json, counts as zero)."""
    count = 0

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        frame.f_trace_opcodes = True
        if event == "opcode":
            count += 1
        return trace

    sys.settrace(trace)
    try:
        run()
    except (MalformedBody, Unmappable):
        pass
    finally:
        sys.settrace(None)
    return count


def ratio(make: Callable[[int], Callable[[], Any]], n: int) -> float:
    return opcodes(make(n * SCALE)) / max(1, opcodes(make(n)))


def duplicate_keys(n: int) -> Callable[[], Any]:
    body = ("{" + ",".join(f'"k": {i}' for i in range(n)) + "}").encode()
    return lambda: parse_json_keeping_duplicates(body)


def attendance(n: int, key: str) -> Callable[[], Any]:
    categories = [{"categoryId": i % 7, "categoryName": f"c{i % 7}", "itemId": i} for i in range(n)]
    body = json.dumps(
        {"attendance": {"attendanceNumber": 1, key: categories, "customer": {"phone": "55449"}}}
    ).encode()
    return lambda: normalize("plugchat", body, kind="finishAttendance")


def attendance_duplicate_keys(n: int) -> Callable[[], Any]:
    copies = ",".join(f'"operatorReport ": "r{i}"' for i in range(n))
    body = f'{{"attendance": {{"attendanceNumber": 1, {copies}}}}}'.encode()
    return lambda: normalize("plugchat", body, kind="finishAttendance")


def chatwoot_attachments(n: int) -> Callable[[], Any]:
    kinds = ["image", "contact", "location"]
    items = [{"file_type": kinds[i % 3], "fallback_title": "5544", "meta": {}} for i in range(n)]
    body = json.dumps(
        {"event": "message_created", "id": 1, "message_type": "incoming", "attachments": items}
    ).encode()
    return lambda: normalize("chatwoot", body)


def chatwoot_contact_phones(n: int) -> Callable[[], Any]:
    # consecutive contact attachments of one card merge into one shared contact
    items = [{"file_type": "contact", "fallback_title": f"55449{i:08d}"} for i in range(n)]
    body = json.dumps(
        {"event": "message_created", "id": 1, "message_type": "incoming", "attachments": items}
    ).encode()
    return lambda: normalize("chatwoot", body)


def padded_keys(n: int) -> Callable[[], Any]:
    # many keys, none of them the ones looked for: every lookup misses
    obj = {f" k{i} ": i for i in range(n)}
    body = json.dumps({"event": "message_created", "message_type": "incoming", **obj}).encode()
    return lambda: normalize("chatwoot", body)


def transcript(n: int) -> Callable[[], Any]:
    chat = {
        f"m{i}": {"messageId": f"m{i}", "momment": 1784045112448 + i, "text": {"message": "ok"}}
        for i in range(n)
    }
    body = json.dumps({"attendance": {"attendanceNumber": 1}, "chat": chat}).encode()
    return lambda: normalize("plugchat", body, kind="finishAttendance")


@pytest.mark.parametrize(
    "make",
    [
        duplicate_keys,
        transcript,
        lambda n: attendance(n, "attendanceCategories"),
        attendance_duplicate_keys,
        chatwoot_attachments,
        chatwoot_contact_phones,
        padded_keys,
    ],
    ids=[
        "duplicate_keys",
        "transcript",
        "categories",
        "attendance_duplicate_keys",
        "attachments",
        "contact_phones",
        "padded",
    ],
)
def test_adversarial_shapes_are_linear(make: Callable[[int], Callable[[], Any]]) -> None:
    assert ratio(make, 200) < LINEAR_BOUND


def test_quadratic_code_would_fail_this_check() -> None:
    """The check itself can tell: a deliberately quadratic loop scores about SCALE**2."""

    def quadratic(n: int) -> Callable[[], Any]:
        def run() -> None:
            seen: list[int] = []
            for i in range(n):
                if i not in seen:  # list membership: O(n) each
                    seen.append(i)
                    for _ in seen:
                        pass

        return run

    assert ratio(quadratic, 50) > LINEAR_BOUND


def test_too_many_ids_are_refused_before_any_event_is_built() -> None:
    def status(n: int) -> Callable[[], Any]:
        body = json.dumps({"type": "MessageStatusCallback", "ids": ["x"] * n}).encode()
        return lambda: normalize("plugchat", body, kind="messageStatus")

    with pytest.raises(Unmappable) as refused:
        status(1001)()
    assert refused.value.reason == "too_many_events"
    # refusing 8000 ids costs what refusing 1001 does: nothing is built per id
    assert opcodes(status(8008)) < opcodes(status(1001)) * 1.5


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)
KEYS = ["ids", "attendanceCategories", "chat", "attachments", "messages", "text", "contact"]


@settings(max_examples=30, deadline=None)
@given(
    value=JSON,
    key=st.sampled_from(KEYS),
    kind=st.sampled_from(["finishAttendance", "messageStatus", "receiveMessage"]),
)
def test_arbitrary_json_repeated_is_never_super_linear(value: Any, key: str, kind: str) -> None:
    def plug(n: int) -> Callable[[], Any]:
        body = json.dumps(
            {
                "type": "ReceivedCallback" if kind == "receiveMessage" else None,
                "messageId": "m",
                "attendance": {key: [value] * n},
                key: [value] * n,
            }
        ).encode()
        return lambda: normalize("plugchat", body, kind=kind)

    def chatwoot(n: int) -> Callable[[], Any]:
        body = json.dumps(
            {
                "event": "message_created",
                "message_type": "incoming",
                key: [value] * n,
                "conversation": {key: [value] * n},
            }
        ).encode()
        return lambda: normalize("chatwoot", body)

    assert ratio(plug, 20) < LINEAR_BOUND
    assert ratio(chatwoot, 20) < LINEAR_BOUND
