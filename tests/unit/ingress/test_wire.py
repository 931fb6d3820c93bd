from __future__ import annotations

import pytest
from multidict import CIMultiDict

from relay.ingress import wire
from relay.ingress.body import BodyTooLarge, BrokenBody
from relay.ingress.request import Answer
from relay.ingress.wire import (
    ROUTES_HELD,
    LeanBody,
    completions,
    encode,
    hook_route,
    message_start,
    unservable,
)


def test_a_hook_url_is_read_as_aiohttp_routes_it() -> None:
    route = hook_route(b"/v1/hooks/cw?token=a+b&x=1")
    assert route is not None
    assert (route.path, route.source, route.kind) == ("/v1/hooks/cw", "cw", None)
    assert route.query["token"] == "a b"
    kinded = hook_route(b"/v1/hooks/plug/messages")
    assert kinded is not None and (kinded.source, kinded.kind) == ("plug", "messages")


def test_a_hook_url_is_read_once_and_its_route_kept_read_only() -> None:
    first = hook_route(b"/v1/hooks/cw?token=one")
    assert first is not None
    assert hook_route(b"/v1/hooks/cw?token=one") is first  # kept, not read again
    other = hook_route(b"/v1/hooks/cw?token=two")
    assert other is not None and other.query["token"] == "two"
    assert first.query["token"] == "one"
    with pytest.raises(TypeError):
        first.query["token"] = "changed"  # type: ignore[index]
    assert hook_route(b"/v1/hooks/cw?token=one") is first


def test_the_routes_kept_are_bounded() -> None:
    for n in range(ROUTES_HELD * 3):
        route = hook_route(b"/v1/hooks/cw?token=%d" % n)
        assert route is not None and route.query["token"] == str(n)
        assert len(wire._routes) <= ROUTES_HELD
    assert hook_route(b"/v1/hooks/cw") is hook_route(b"/v1/hooks/cw")


@pytest.mark.parametrize(
    "url",
    [
        b"/v1/hooks/",
        b"/v1/hooks/cw/",
        b"/v1/hooks/a/b/c",
        b"/v1/hooks/c%77",
        b"/v1/hooks/./x",
        b"/v1/hooks/x/..",
        b"/healthz",
        b"http://host/v1/hooks/cw",
        b"/v1/hooks/\xc3\xa9",
    ],
)
def test_other_targets_are_left_to_aiohttp(url: bytes) -> None:
    assert hook_route(url) is None


@pytest.mark.parametrize(
    ("version", "headers", "why"),
    [
        ("1.1", {"Host": "h"}, None),
        ("1.0", {}, None),
        ("1.1", {"Host": "h", "Transfer-Encoding": "chunked"}, None),
        ("1.1", {"Host": "h", "Expect": "100-continue"}, None),
        ("1.1", {}, "no host"),
        ("1.1", {"Host": "h", "Upgrade": "h2c"}, "upgrade"),
        ("1.1", {"Host": "h", "Content-Encoding": "gzip"}, "content-encoding"),
        ("1.1", {"Host": "h", "Transfer-Encoding": "gzip, chunked"}, "transfer-encoding"),
        ("1.1", {"Host": "h", "Expect": "something"}, "expect"),
        ("1.0", {"Expect": "100-continue"}, "expect"),
    ],
)
def test_what_the_lean_server_leaves_to_aiohttp(
    version: str, headers: dict[str, str], why: str | None
) -> None:
    assert unservable(version, CIMultiDict(headers)) == why


def test_the_answer_is_written_as_aiohttp_writes_it() -> None:
    answer = Answer(503, b'{"e":1}', {"Retry-After": "1"})
    data = encode(answer, "rid", "1.1", keep_alive=False)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 503 Service Unavailable"
    assert [line.split(":")[0] for line in lines[1:]] == [
        "Retry-After",
        "Content-Type",
        "X-Request-Id",
        "Content-Length",
        "Date",
        "Server",
        "Connection",
    ]
    assert "Connection: close" in lines and "Content-Length: 7" in lines
    assert body == b'{"e":1}'
    kept = encode(Answer(202, b"{}"), "rid", "1.0", keep_alive=True)
    assert kept.startswith(b"HTTP/1.0 202 Accepted\r\n") and b"Connection: keep-alive" in kept


def _request(body: bytes) -> bytes:
    return b"POST /v1/hooks/cw HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )


def test_the_start_of_a_pipelined_request_is_found() -> None:
    first, second = _request(b'{"a":1}'), _request(b"{}")
    third = b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n"
    raw = first + second + third[:10]
    assert completions(raw) == 2
    assert message_start(raw, 0) == 0
    assert message_start(raw, 1) == len(first)
    assert message_start(raw, 2) == len(first) + len(second)
    assert completions(first + b"GARBAGE\r\n\r\n") == 1


async def test_a_body_over_its_limit_is_refused_and_not_kept() -> None:
    body = LeanBody(None, limit=4)
    body.feed(b"abc")
    assert not body.complete()
    body.feed(b"de")
    assert body.complete() and body.over
    with pytest.raises(BodyTooLarge, match="over the limit of 4 bytes"):
        body.take(4)
    declared = LeanBody(10, limit=4)
    with pytest.raises(BodyTooLarge, match="body of 10 bytes"):
        await declared.read(4)


async def test_a_body_cut_short_is_broken_and_a_whole_one_is_given() -> None:
    asked: list[bool] = []
    body = LeanBody(None, limit=100, ask=lambda: asked.append(True))
    body.feed(b'{"a":')
    body.broken()
    with pytest.raises(BrokenBody):
        await body.read(100)
    whole = LeanBody(None, limit=100, ask=lambda: asked.append(True))
    whole.feed(b"{")
    whole.feed(b"}")
    whole.finish()
    assert await whole.read(100) == b"{}"
    assert asked == []  # complete already: nothing to ask for
