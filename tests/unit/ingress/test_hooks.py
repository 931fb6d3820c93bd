"""answer_hook, the hook handler, without a server: each exit, and which check comes first.

The HTTP side (both servers, real sockets) is tests/integration/test_ingress_http.py;
here a :class:`HookRequest` goes straight in and the answer, its outcome label, the
counter, the log line, the bus and the in-flight counts are read back.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from multidict import CIMultiDict
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from relay.bus import BusError, RecordTooLarge
from relay.bus.memory import MemoryBus
from relay.cloudevents import decode
from relay.ingress import hooks
from relay.ingress.body import BodyTooLarge, BrokenBody
from relay.ingress.hooks import UNAUTHORIZED_DETAIL, answer_hook
from relay.ingress.request import Answer, HookRequest
from relay.ingress.state import UNKNOWN_SOURCE, IngressState, live_for
from relay.live import Current
from relay.logs import LogBudget
from relay.pipeline import Pipeline
from tests.factories import chatwoot_message, chatwoot_signed
from tests.support import make_config

TOKEN = "tok-1"
SECRET = "hmac-secret"
CONFIG = f"""
sources:
  cw: {{provider: chatwoot, tokens: ["{TOKEN}"]}}
  signed: {{provider: chatwoot, signing_secret: "{SECRET}"}}
  pc: {{provider: plugchat}}
  limited: {{provider: chatwoot, rate_limit: 1/s}}
  narrow: {{provider: chatwoot, max_in_flight: 1}}
  lan: {{provider: chatwoot, allow_cidrs: ["10.0.0.0/8"]}}
limits: {{max_body_bytes: 1024, body_timeout: 50ms, max_in_flight: 8}}
"""


class Body:
    """A request body as the servers hand it over: all in, or still coming (and then it
    arrives after ``read``, never, or broken), counting how it was read."""

    def __init__(
        self,
        data: bytes,
        *,
        complete: bool = True,
        arrives: bool = True,
        fails: Exception | None = None,
    ):
        self.data = data
        self.is_complete = complete
        self.arrives = arrives
        self.fails = fails
        self.reads = 0

    def complete(self) -> bool:
        return self.is_complete

    def _give(self, limit: int) -> bytes:
        self.reads += 1
        if self.fails is not None:
            raise self.fails
        if len(self.data) > limit:
            raise BodyTooLarge(f"body of {len(self.data)} bytes is over the limit of {limit}")
        return self.data

    def take(self, limit: int) -> bytes:
        assert self.is_complete, "take() is for a body that is all in"
        return self._give(limit)

    async def read(self, limit: int) -> bytes:
        if not self.arrives:
            await asyncio.Event().wait()
        return self._give(limit)


def hook(
    source: str = "cw",
    body: Body | bytes = b"",
    *,
    kind: str | None = None,
    token: str | None = TOKEN,
    headers: Mapping[str, str] | None = None,
    content_type: str | None = "application/json",
    peer: str | None = "127.0.0.1",
) -> HookRequest:
    if isinstance(body, bytes):
        body = Body(body or chatwoot_message(1))
    given: CIMultiDict[str] = CIMultiDict()
    if content_type is not None:
        given["Content-Type"] = content_type
    given.update(headers or {})
    return HookRequest(
        source=source,
        kind=kind,
        headers=given,
        query={"token": token} if token is not None else {},
        peer=lambda: peer,
        request_id="req-1",
        body=body,
    )


@pytest.fixture(autouse=True)
def strangers_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh log budget for strangers' rejections: the process's is shared by every test
    that sends one, and a spent budget would drop the lines these tests read."""
    monkeypatch.setattr(hooks, "_STRANGERS", LogBudget(limit=20, window=60.0))


@pytest.fixture
async def bus() -> AsyncIterator[MemoryBus]:
    bus = MemoryBus()
    await bus.start()
    yield bus
    await bus.close()


def state_for(bus: Any, yaml_text: str = CONFIG) -> IngressState:
    config = make_config(yaml_text)
    current = Current(live_for(config))
    return IngressState(Pipeline(bus, current, config.topics), current)


@pytest.fixture
def state(bus: MemoryBus) -> IngressState:
    return state_for(bus)


def counted(source: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "relay_requests_total", {"source": source, "outcome": outcome}
    )
    return value or 0.0


def error_of(answer: Answer) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(answer.body)
    assert set(decoded) == {"error", "detail"} and decoded["detail"]
    return decoded


async def answered(
    request: HookRequest, state: IngressState, outcome: str, status: int
) -> tuple[Answer, list[dict[str, Any]]]:
    """The answer to ``request``, checked for its outcome, status and count; its log lines."""
    source = request.source if request.source in state.current.live.ingress.sources else None
    before = counted(source or UNKNOWN_SOURCE, outcome)
    with capture_logs() as logs:
        label, answer = await answer_hook(request, state)
    assert (label, answer.status) == (outcome, status), answer.body
    assert counted(source or UNKNOWN_SOURCE, outcome) == before + 1
    assert state.in_flight == 0
    for entry in state.current.live.ingress.sources.values():
        assert entry.in_flight == 0, entry.name
    return answer, logs


# --- accepted -----------------------------------------------------------------------------


async def test_accepted_publishes_the_raw_copy_and_the_event_in_one_write(
    state: IngressState, bus: MemoryBus
) -> None:
    body = chatwoot_message(7, conversation=3)
    answer, logs = await answered(hook(body=body), state, "accepted", 202)
    decoded = json.loads(answer.body)
    assert decoded["accepted"] == 1 and len(decoded["ids"]) == 1
    assert "deadlettered" not in decoded
    assert bus.publishes == 1
    [raw] = bus.records("relay.raw")
    assert raw.value == body and raw.key == b"cw"
    headers = dict(raw.headers)
    assert headers["relay-source"] == b"cw" and headers["relay-request-id"] == b"req-1"
    [stored] = bus.records("chat.events")
    event = decode(stored.value)
    assert event.id == decoded["ids"][0]
    assert event.data.message is not None and event.data.message.text == "message 7"
    assert logs == []  # an accepted hook logs nothing


async def test_a_missing_content_type_is_read_as_json(state: IngressState) -> None:
    await answered(hook(content_type=None), state, "accepted", 202)


async def test_a_body_still_coming_is_awaited(state: IngressState, bus: MemoryBus) -> None:
    body = Body(chatwoot_message(8), complete=False)
    await answered(hook(body=body), state, "accepted", 202)
    assert body.reads == 1 and len(bus.records("chat.events")) == 1


async def test_a_sane_delivery_id_is_kept_and_any_other_dropped(
    state: IngressState, bus: MemoryBus
) -> None:
    sane = {"X-Chatwoot-Delivery": "8d8e7c1a-2f34-4c57-9f6f-3b8b9d0e1a22"}
    await answered(hook(body=chatwoot_message(1), headers=sane), state, "accepted", 202)
    insane = {"X-Chatwoot-Delivery": "not a token\u00e9"}
    await answered(hook(body=chatwoot_message(2), headers=insane), state, "accepted", 202)
    first, second = (dict(item.headers) for item in bus.records("relay.raw"))
    assert first["relay-delivery-id"] == sane["X-Chatwoot-Delivery"].encode()
    assert "relay-delivery-id" not in second
    events = [decode(item.value) for item in bus.records("chat.events")]
    assert [e.providerdelivery for e in events] == [sane["X-Chatwoot-Delivery"], None]


# --- who is asking ------------------------------------------------------------------------


async def test_an_unknown_source_is_told_no_more_than_a_wrong_token(
    state: IngressState, bus: MemoryBus
) -> None:
    unknown, _ = await answered(hook("nope"), state, "unknown_source", 401)
    wrong, logs = await answered(hook(token="wrong"), state, "unauthorized", 401)
    assert unknown.body == wrong.body
    assert error_of(wrong) == {"error": "unauthorized", "detail": UNAUTHORIZED_DETAIL}
    assert [(e["event"], e["reason"]) for e in logs] == [("hook_rejected", "unauthorized")]
    assert bus.items == []


async def test_debug_errors_say_why(bus: MemoryBus) -> None:
    state = state_for(bus, CONFIG + "debug_errors: true\n")
    unknown, _ = await answered(hook("nope"), state, "unknown_source", 404)
    assert error_of(unknown)["error"] == "unknown_source" and "nope" in error_of(unknown)["detail"]
    wrong, _ = await answered(hook(token="wrong"), state, "unauthorized", 401)
    assert error_of(wrong)["detail"] != UNAUTHORIZED_DETAIL


async def test_the_signature_is_checked_over_the_body_read(
    state: IngressState, bus: MemoryBus
) -> None:
    body = chatwoot_message(3)
    await answered(
        hook("signed", body, token=None, headers=chatwoot_signed(body, SECRET)),
        state,
        "accepted",
        202,
    )
    forged = hook("signed", body, token=None, headers=chatwoot_signed(body, "other"))
    answer, logs = await answered(forged, state, "bad_signature", 401)
    assert error_of(answer)["detail"] == UNAUTHORIZED_DETAIL
    assert [e["reason"] for e in logs] == ["bad_signature"]
    assert len(bus.records("relay.raw")) == 1  # the forged body is not kept


@pytest.mark.parametrize(
    ("peer", "outcome", "status"),
    [
        ("10.1.2.3", "accepted", 202),
        ("192.168.1.9", "unauthorized", 401),
        (None, "unauthorized", 401),
    ],
)
async def test_a_source_with_allowed_networks_checks_the_peer(
    state: IngressState, peer: str | None, outcome: str, status: int
) -> None:
    await answered(hook("lan", token=None, peer=peer), state, outcome, status)


# --- refused before the body is read -------------------------------------------------------


async def test_backpressure_refuses_before_reading_the_body(
    state: IngressState, bus: MemoryBus
) -> None:
    state.in_flight = 8  # limits.max_in_flight
    body = Body(chatwoot_message(1))
    before = counted("cw", "overloaded")
    with capture_logs() as logs:
        label, answer = await answer_hook(hook(body=body), state)
    assert (label, answer.status, answer.headers) == ("overloaded", 503, {"Retry-After": "1"})
    assert error_of(answer)["error"] == "overloaded"
    assert counted("cw", "overloaded") == before + 1
    assert [(e["reason"], e["log_level"]) for e in logs] == [("overloaded", "warning")]
    assert state.in_flight == 8 and body.reads == 0 and bus.items == []


async def test_a_source_over_its_share_is_refused_alone(state: IngressState) -> None:
    narrow = state.current.live.ingress.sources["narrow"]
    narrow.in_flight = 1
    try:
        with capture_logs() as logs:
            label, answer = await answer_hook(hook("narrow", token=None), state)
        assert (label, answer.status) == ("overloaded", 503)
        assert "narrow" in error_of(answer)["detail"]
        assert [(e["reason"], e["log_level"]) for e in logs] == [("source_overloaded", "warning")]
        label, answer = await answer_hook(hook("cw"), state)  # the others still get in
        assert (label, answer.status) == ("accepted", 202)
    finally:
        narrow.in_flight = 0


@pytest.mark.parametrize(
    ("source", "kind", "detail"),
    [("pc", None, "need a kind"), ("pc", "nonsense", "unknown"), ("cw", "messages", "no kind")],
)
async def test_the_url_kind_must_fit_the_provider(
    state: IngressState, source: str, kind: str | None, detail: str
) -> None:
    token = TOKEN if source == "cw" else None
    request = hook(source, kind=kind, token=token)
    answer, _ = await answered(request, state, "unknown_kind", 404)
    assert detail in error_of(answer)["detail"]
    assert isinstance(request.body, Body) and request.body.reads == 0


async def test_over_the_rate_limit_is_429_with_when_to_come_back(state: IngressState) -> None:
    await answered(hook("limited", token=None), state, "accepted", 202)
    answer, _ = await answered(hook("limited", token=None), state, "rate_limited", 429)
    assert answer.headers is not None and int(answer.headers["Retry-After"]) >= 1


async def test_a_body_that_is_not_json_by_its_type_is_415(state: IngressState) -> None:
    request = hook(content_type="text/plain")
    answer, _ = await answered(request, state, "unsupported_media_type", 415)
    assert "text/plain" in error_of(answer)["detail"]
    assert isinstance(request.body, Body) and request.body.reads == 0


# --- the body -----------------------------------------------------------------------------


async def test_a_body_over_the_limit_is_413(state: IngressState, bus: MemoryBus) -> None:
    # the fake body refuses past the limit it is given: 1025 bytes fail only at 1024
    answer, _ = await answered(hook(body=b"x" * 1025), state, "payload_too_large", 413)
    assert "1024" in error_of(answer)["detail"] and bus.items == []


async def test_a_body_that_does_not_arrive_in_time_is_408(state: IngressState) -> None:
    body = Body(chatwoot_message(1), complete=False, arrives=False)
    answer, _ = await answered(hook(body=body), state, "body_timeout", 408)
    assert error_of(answer)["error"] == "request_timeout"


async def test_a_broken_body_is_400(state: IngressState) -> None:
    body = Body(b"", complete=False, fails=BrokenBody("the gzip stream ends early"))
    answer, _ = await answered(hook(body=body), state, "bad_body", 400)
    assert error_of(answer) == {"error": "bad_request", "detail": "the gzip stream ends early"}


# --- what the pipeline made of it ----------------------------------------------------------


async def test_not_json_is_400_and_the_body_is_kept(state: IngressState, bus: MemoryBus) -> None:
    answer, _ = await answered(hook(body=b"{not json"), state, "malformed_json", 400)
    assert error_of(answer)["error"] == "malformed_json"
    assert [item.value for item in bus.records("relay.raw")] == [b"{not json"]
    [dead] = bus.records("relay.deadletter")
    assert dead.value == b"{not json"


async def test_json_that_makes_no_event_is_202_and_dead_lettered(
    state: IngressState, bus: MemoryBus
) -> None:
    body = json.dumps({"event": "no_such_event", "id": 1}).encode()
    answer, logs = await answered(hook(body=body), state, "deadlettered", 202)
    decoded = json.loads(answer.body)
    assert decoded["accepted"] == 0 and decoded["ids"] == []
    assert decoded["deadlettered"] == dict(logs[0])["reason"]
    assert [e["event"] for e in logs] == ["hook_deadlettered"]
    assert len(bus.records("relay.deadletter")) == 1 and bus.records("chat.events") == []


async def test_a_bus_that_is_away_is_503_and_counts_nothing_in_flight(
    state: IngressState, bus: MemoryBus
) -> None:
    bus.failure = BusError("broker gone")
    answer, logs = await answered(hook(), state, "unavailable", 503)
    assert answer.headers == {"Retry-After": "5"}
    assert error_of(answer)["detail"] == "the event bus is unavailable; retry later"
    [line] = logs
    assert (line["reason"], line["detail"], line["log_level"]) == (
        "bus_unavailable",
        "broker gone",
        "warning",
    )
    bus.failure = None  # the sender's retry is accepted once the bus is back
    await answered(hook(), state, "accepted", 202)


async def test_a_record_the_bus_never_takes_is_413(state: IngressState, bus: MemoryBus) -> None:
    bus.failure = RecordTooLarge("a 2000000-byte record is over the limit")
    answer, logs = await answered(hook(), state, "payload_too_large", 413)
    assert "2000000" in error_of(answer)["detail"]
    assert [e["reason"] for e in logs] == ["too_large_for_bus"]


async def test_a_reload_between_requests_is_read_by_the_next_one(state: IngressState) -> None:
    await answered(hook(), state, "accepted", 202)
    stricter = live_for(make_config(CONFIG.replace(TOKEN, "tok-2")))
    state.current.live = stricter
    await answered(hook(), state, "unauthorized", 401)
    await answered(hook(token="tok-2"), state, "accepted", 202)


# --- which check answers when two would ----------------------------------------------------


async def test_credentials_come_before_backpressure(state: IngressState) -> None:
    state.in_flight = 8
    label, answer = await answer_hook(hook(token="wrong"), state)
    assert (label, answer.status) == ("unauthorized", 401)  # a stranger learns no load


async def test_backpressure_comes_before_the_url_kind(state: IngressState) -> None:
    state.in_flight = 8
    label, answer = await answer_hook(hook("pc", token=None), state)
    assert (label, answer.status) == ("overloaded", 503)


async def test_the_url_kind_comes_before_the_rate_limit(state: IngressState) -> None:
    await answered(hook("limited", token=None), state, "accepted", 202)  # the burst spent
    await answered(hook("limited", kind="x", token=None), state, "unknown_kind", 404)
    await answered(hook("limited", token=None), state, "rate_limited", 429)


async def test_the_rate_limit_comes_before_the_content_type(state: IngressState) -> None:
    await answered(hook("limited", token=None), state, "accepted", 202)
    late = hook("limited", token=None, content_type="text/plain")
    await answered(late, state, "rate_limited", 429)


async def test_the_content_type_comes_before_the_body(state: IngressState) -> None:
    request = hook(body=b"x" * 5000, content_type="text/plain")
    await answered(request, state, "unsupported_media_type", 415)


async def test_the_body_limit_comes_before_the_signature(state: IngressState) -> None:
    big = b"x" * 5000
    forged = hook("signed", big, token=None, headers=chatwoot_signed(big, "other"))
    await answered(forged, state, "payload_too_large", 413)


async def test_the_signature_comes_before_parsing(state: IngressState, bus: MemoryBus) -> None:
    forged = hook(
        "signed", b"{not json", token=None, headers=chatwoot_signed(b"{not json", "other")
    )
    await answered(forged, state, "bad_signature", 401)
    assert bus.items == []  # neither the raw copy nor a dead letter of a forged body
