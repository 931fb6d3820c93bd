"""``relay check`` warns about what parses but cannot work: unreachable subscribers, type
globs that match nothing, ``where`` paths and values no event can have."""

from __future__ import annotations

from pathlib import Path

import pytest

from relay.checks import path_leaves, reachable_topics, warnings
from relay.cli import main
from tests.support import make_config

EXAMPLE = Path(__file__).parents[2] / "config" / "relay.example.yaml"
ROUTES = """
routes:
  - {name: messages, match: {type: "chat.message.*"}, topic: chat.messages}
  - {name: plug, match: {type: chat.conversation.status_changed, source: "plug*"},
     topic: chat.attendance}
"""


def _subscriber(match: str, topics: str = "") -> str:
    extra = f", topics: {topics}" if topics else ""
    return f"subscribers:\n  - {{name: crm, url: 'http://127.0.0.1:9/x', match: {match}{extra}}}\n"


def test_the_example_has_no_warnings() -> None:
    assert main(["check", "--config", str(EXAMPLE), "--strict"]) == 0


def test_a_subscriber_on_the_default_topic_while_a_route_takes_its_events() -> None:
    config = make_config(ROUTES + _subscriber("{type: chat.message.created}"))
    assert warnings(config) == [
        "subscribers[0] (crm): no event of type 'chat.message.created' reaches its topics "
        "(chat.events); the routes send them to chat.messages"
    ]
    # Reading the routed topic, or a route that only takes some of them, is fine.
    assert not warnings(
        make_config(ROUTES + _subscriber("{type: chat.message.created}", "chat.messages"))
    )
    filtered = ROUTES.replace('{type: "chat.message.*"}', '{type: "chat.message.*", source: x}')
    assert not warnings(make_config(filtered + _subscriber("{type: chat.message.created}")))


def test_reachable_topics_follow_the_routes() -> None:
    config = make_config(ROUTES)
    assert reachable_topics(config, "chat.message.created") == {"chat.messages"}
    # only plug* sources are routed away: the rest still go to the default
    assert reachable_topics(config, "chat.conversation.status_changed") == {
        "chat.attendance",
        "chat.events",
    }
    assert reachable_topics(config, "chat.contact.created") == {"chat.events"}


def test_a_glob_that_matches_no_type() -> None:
    config = make_config(_subscriber("{type: chat.messages.created}"))
    assert warnings(config) == [
        "subscribers[0].match.type: 'chat.messages.created' matches no event type "
        "(did you mean 'chat.message.created'?)"
    ]
    routed = make_config("routes: [{name: r, match: {type: [chat.typing.*, nope]}, topic: t}]")
    assert warnings(routed) == ["routes[0].match.type: 'nope' matches no event type"]


def test_where_paths_come_from_the_event_structs() -> None:
    config = make_config(_subscriber("{where: {message.direction: incoming}}"))
    assert warnings(config) == [
        "subscribers[0].match.where: no event has the path 'message.direction' "
        "(did you mean 'data.message.direction'?)"
    ]
    for path in (
        "type",
        "data.message.direction",
        "data.message.media.0.url",
        "data.conversation.attendance.transcript.2.sender.type",
        "data.conversation.custom_attributes.plan.tier",  # a free-form mapping
        "data.changes.status.current",
        "data.changes.status.current.anything",  # Any
    ):
        assert path_leaves(path), path
    for path in ("data.message.media.first", "data.message.text.length", "data.nothing"):
        assert not path_leaves(path), path


def test_where_values_a_field_can_never_take() -> None:
    config = make_config(_subscriber("{where: {data.message.direction: inbound}}"))
    assert warnings(config) == [
        "subscribers[0].match.where.data.message.direction: 'inbound' is never a value "
        "there (it is one of 'incoming', 'outgoing', None)"
    ]
    for value in ("incoming", "in*", "[incoming, outgoing]", "null"):
        text = _subscriber(f"{{where: {{data.message.direction: {value}}}}}")
        assert not warnings(make_config(text)), value


def test_check_prints_warnings_and_strict_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "relay.yaml"
    path.write_text(f"data_dir: {tmp_path}\n" + ROUTES + _subscriber("{type: chat.message.*}"))
    assert main(["check", "--config", str(path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("configuration with 1 warning(s): ")
    [line] = captured.err.splitlines()
    assert line.startswith("relay: warning: subscribers[0] (crm): no event of type")
    assert main(["check", "--config", str(path), "--strict"]) == 1


def test_check_refuses_duplicate_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "relay.yaml"
    path.write_text("sources: {}\nlisten: {port: 8080}\nsources: {}\n")
    assert main(["check", "--config", str(path)]) == 1
    assert capsys.readouterr().err == (
        f"relay: {path}:3:1: duplicate key 'sources' (first at line 1)\n"
    )


SOURCES = """
sources:
  nexloo: {provider: chatwoot, tokens: [a-long-enough-token]}
  plugchat: {provider: plugchat, tokens: [a-long-enough-token]}
"""


def test_routes_by_source_follow_the_configured_sources() -> None:
    status = "{type: chat.conversation.status_changed, source: 'plug*'}"
    config = make_config(SOURCES + ROUTES + _subscriber(status))
    assert warnings(config) == [
        "subscribers[0] (crm): no event of type 'chat.conversation.status_changed' reaches "
        "its topics (chat.events); the routes send them to chat.attendance"
    ]
    assert reachable_topics(config, "chat.conversation.status_changed", "plugchat") == {
        "chat.attendance"
    }
    assert reachable_topics(config, "chat.conversation.status_changed", "nexloo") == {"chat.events"}
    # nexloo's status changes still reach chat.events
    any_source = _subscriber("{type: chat.conversation.status_changed}")
    assert not warnings(make_config(SOURCES + ROUTES + any_source))


def test_a_subscriber_filter_no_source_has() -> None:
    config = make_config(SOURCES + _subscriber("{source: nexlo}"))
    assert warnings(config) == [
        "subscribers[0] (crm).match: no configured source has the source/provider it asks "
        "for (sources: nexloo, plugchat)"
    ]
    assert not warnings(make_config(_subscriber("{source: nexlo}")))  # no sources: unknown


@pytest.mark.parametrize(
    "match",
    [
        "{type: chat.message.created}",
        "{type: chat.messages.created}",
        "{where: {message.direction: incoming}}",
        "{where: {data.message.direction: inbound}}",
    ],
)
def test_the_docs_show_the_warnings_as_relay_prints_them(match: str) -> None:
    readme = (Path(__file__).parents[2] / "docs" / "commands.md").read_text()
    found = warnings(make_config(ROUTES + _subscriber(match)))
    assert found
    for warning in found:
        assert f"relay: warning: {warning}\n" in readme
