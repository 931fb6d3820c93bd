"""The live settings: one frozen value built whole from a configuration."""

from __future__ import annotations

import msgspec
import pytest

from relay.live import Current, Live
from tests.factories import chat_event
from tests.support import make_config

CONFIG = """
routes: [{name: chats, match: {type: 'chat.*'}, topic: chat.only}]
limits: {max_events_per_body: 3, header_timeout: 2s}
dedupe: {window: 30s, max_entries: 7}
"""


def test_every_field_is_read_from_the_configuration() -> None:
    live = Live.build(make_config(CONFIG), ingress="the ingress's part")
    assert list(live.router.topics_for(chat_event(1, 1))) == ["chat.only"]
    assert (live.max_events, live.header_timeout) == (3, 2.0)
    assert (live.dedupe_window, live.dedupe_max_entries) == (30.0, 7)
    assert live.ingress == "the ingress's part"
    defaults = Live.build(make_config("{}"), ingress=None)
    changed = [f for f in Live.__struct_fields__ if getattr(live, f) == getattr(defaults, f)]
    assert changed == []  # the sample sets every field: none is left at its default


def test_the_value_is_frozen_and_the_holder_takes_a_new_one_whole() -> None:
    live = Live.build(make_config(CONFIG), ingress=None)
    with pytest.raises(AttributeError):
        live.max_events = 4  # type: ignore[misc]
    current = Current(live)
    newer = msgspec.structs.replace(live, max_events=4)
    current.live = newer
    assert current.live is newer and live.max_events == 3
