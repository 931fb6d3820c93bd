from __future__ import annotations

import msgspec

from relay.config import Match, Route
from relay.events import DATASCHEMA, CloudEvent, EventData, Media, Message
from relay.routing import _MISSING, Matcher, Router, resolve


def event(
    type_: str = "chat.message.created",
    source: str = "nexloo",
    provider: str = "chatwoot",
    direction: str | None = "incoming",
    private: bool = False,
) -> CloudEvent:
    return CloudEvent(
        specversion="1.0",
        id="id-1",
        source=f"relay/{source}",
        type=type_,  # type: ignore[arg-type]
        time="2024-01-01T00:00:00.000Z",
        datacontenttype="application/json",
        dataschema=DATASCHEMA,
        partitionkey=f"{source}:1",
        data=EventData(
            provider=provider,  # type: ignore[arg-type]
            source=source,
            provider_event="x",
            message=Message(id="1", kind="text", direction=direction, private=private),  # type: ignore[arg-type]
        ),
    )


def test_type_and_source_globs() -> None:
    matcher = Matcher.compile(Match(type="chat.message.*", source=["plug*", "nexloo"]))
    assert matcher(event())
    assert matcher(event(source="plugchat"))
    assert not matcher(event(source="trino"))
    assert not matcher(event(type_="chat.conversation.created"))


def test_provider_and_where() -> None:
    matcher = Matcher.compile(
        Match(provider="chatwoot", where={"data.message.direction": "incoming"})
    )
    assert matcher(event())
    assert not matcher(event(direction="outgoing"))
    assert not matcher(event(provider="plugchat"))


def test_where_lists_booleans_and_absence() -> None:
    any_direction = Matcher.compile(
        Match(where={"data.message.direction": ["incoming", "outgoing"]})
    )
    assert any_direction(event(direction="outgoing"))
    private = Matcher.compile(Match(where={"data.message.private": True}))
    assert private(event(private=True))
    assert not private(event(private=False))
    no_direction = Matcher.compile(Match(where={"data.message.direction": None}))
    assert no_direction(event(direction=None))
    missing_path = Matcher.compile(Match(where={"data.nothing.here": "x"}))
    assert not missing_path(event())


def test_resolve_walks_structs_and_mappings() -> None:
    assert resolve(event(), "data.message.id") == "1"
    assert resolve({"a": [{"b": 2}]}, "a.0.b") == 2


def test_every_matching_route_publishes_and_default_catches_the_rest() -> None:
    router = Router(
        [
            Route(name="all-messages", match=Match(type="chat.message.*"), topic="messages"),
            Route(name="nexloo", match=Match(source="nexloo"), topic="nexloo"),
            Route(name="dup", match=Match(type="chat.message.created"), topic="messages"),
        ],
        default_topic="chat.events",
    )
    assert list(router.topics_for(event())) == ["messages", "nexloo"]
    unclaimed = event(type_="chat.contact.created", source="trino")
    assert list(router.topics_for(unclaimed)) == ["chat.events"]


def test_remembered_topics_are_the_ones_matching_gives() -> None:
    """Routes without ``where`` are matched once per (type, source, provider)."""
    routes = [
        Route(name="messages", match=Match(type="chat.message.*"), topic="messages"),
        Route(name="nexloo", match=Match(source=["nexloo", "n*"]), topic="nexloo"),
        Route(name="plug", match=Match(provider="plugchat", type="chat.*"), topic="plug"),
    ]
    router = Router(routes, default_topic="chat.events")
    shapes = [
        event(type_=t, source=s, provider=p)
        for t in ("chat.message.created", "chat.contact.created", "chat.conversation.updated")
        for s in ("nexloo", "nova", "trino")
        for p in ("chatwoot", "plugchat")
    ]
    for _ in range(2):  # the second round is answered from memory
        for shape in shapes:
            assert list(router.topics_for(shape)) == list(router._match(shape)), shape.type
    assert list(router.topics_for(event(type_="chat.contact.created", source="trino"))) == [
        "chat.events"
    ]


def test_where_routes_are_matched_for_every_event() -> None:
    """A ``where`` route reads the event's data: two events of one type can differ."""
    route = Route(
        name="in",
        match=Match(type="chat.message.*", where={"data.message.direction": "incoming"}),
        topic="incoming",
    )
    router = Router([route], default_topic="chat.events")
    assert list(router.topics_for(event(direction="incoming"))) == ["incoming"]
    assert list(router.topics_for(event(direction="outgoing"))) == ["chat.events"]
    assert list(router.topics_for(event(direction="incoming"))) == ["incoming"]


def with_media(size: int | None) -> CloudEvent:
    base = event()
    assert base.data.message is not None
    message = msgspec.structs.replace(base.data.message, media=[Media(size=size)])
    return msgspec.structs.replace(base, data=msgspec.structs.replace(base.data, message=message))


def test_paths_that_lead_nowhere_are_missing_not_errors() -> None:
    assert resolve(event(), "data.message.direction.x") is _MISSING  # into a string
    assert resolve({"a": [1]}, "a.x") is _MISSING  # a list with a name
    assert resolve({"a": [1]}, "a.1") is _MISSING  # past the end of a list
    assert resolve({"a": [1]}, "a.0") == 1
    # absent is not null: resolve tells them apart (a where of null accepts both)
    assert resolve(event(), "data.nothing") is _MISSING
    assert resolve({"a": {}}, "a.b") is _MISSING
    assert resolve({"a": {"b": None}}, "a.b") is None
    assert not Matcher.compile(Match(where={"data.message.direction.x": "y"}))(event())


def test_null_matches_absent_or_null_and_nothing_else() -> None:
    no_direction = Matcher.compile(Match(where={"data.message.direction": None}))
    assert no_direction(event(direction=None))
    assert not no_direction(event(direction="incoming"))
    assert Matcher.compile(Match(where={"data.nothing": None}))(event())


def test_numbers_booleans_and_strings_do_not_mix() -> None:
    size = "data.message.media.0.size"
    assert Matcher.compile(Match(where={size: 1024}))(with_media(1024))
    assert not Matcher.compile(Match(where={size: 1024}))(with_media(2048))
    assert not Matcher.compile(Match(where={size: "1024"}))(with_media(1024))  # no crash
    assert not Matcher.compile(Match(where={size: True}))(with_media(1))  # True is not 1
    assert not Matcher.compile(Match(where={"data.message.private": 1}))(event(private=True))
    assert not Matcher.compile(Match(where={"data.message.direction": 5}))(event())
