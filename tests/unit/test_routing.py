from __future__ import annotations

from relay.config import Match, Route
from relay.events import DATASCHEMA, CloudEvent, EventData, Message
from relay.routing import Matcher, Router, resolve


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
    assert router.topics_for(event()) == ["messages", "nexloo"]
    unclaimed = event(type_="chat.contact.created", source="trino")
    assert list(router.topics_for(unclaimed)) == ["chat.events"]
