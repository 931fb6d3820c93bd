"""Chatwoot payloads (real 4.12-4.15 shapes and the white-label docs) → canonical events."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from relay.events import CloudEvent
from relay.providers import MalformedBody, Unmappable
from tests.factories import RECEIVED_AT, normalize
from tests.support import fixture_bytes

Chatwoot = Callable[[str], CloudEvent]


def test_incoming_message(chatwoot: Chatwoot) -> None:
    event = chatwoot("message_created")
    assert event.type == "chat.message.created"
    assert event.source == "relay/src"
    assert event.subject == "conversation/4711"
    assert event.partitionkey == "src:4711"
    assert event.time == "2026-07-14T13:18:01.865Z"  # the top-level ISO created_at
    data = event.data
    assert (data.provider, data.source, data.provider_event) == (
        "chatwoot",
        "src",
        "message_created",
    )
    assert data.account is not None and data.account.id == "7"
    assert data.inbox is not None and data.inbox.id == "12"
    message = data.message
    assert message is not None
    assert message.id == "982341"
    assert message.direction == "incoming"
    assert message.kind == "text"
    assert message.private is False
    assert message.text is not None and "< R$ 200 &" in message.text  # \u003c decoded
    assert data.actor is not None and data.actor.type == "contact"  # sender had no `type`
    assert data.actor.id == "18342"
    assert data.contact is not None and data.contact.phone == "+5544999990001"
    assert data.conversation is not None
    assert data.conversation.status == "open"
    assert data.conversation.channel == "Channel::Whatsapp"


def test_outgoing_agent_message(chatwoot: Chatwoot) -> None:
    data = chatwoot("message_created_outgoing_agent").data
    assert data.message is not None and data.message.direction == "outgoing"
    assert data.actor is not None
    assert (data.actor.type, data.actor.id) == ("agent", "31")


def test_private_note(chatwoot: Chatwoot) -> None:
    data = chatwoot("message_created_private_note").data
    assert data.message is not None
    assert (data.message.direction, data.message.private) == ("outgoing", True)


def test_bot_prompt_with_null_sender_and_integer_message_type(chatwoot: Chatwoot) -> None:
    data = chatwoot("message_created_bot_null_sender").data
    assert data.message is not None
    assert data.message.direction == "outgoing"  # message_type 3: template
    assert data.message.kind == "template"
    assert data.actor is not None and data.actor.type == "bot"


def test_image_attachment(chatwoot: Chatwoot) -> None:
    message = chatwoot("message_created_attachment").data.message
    assert message is not None and message.kind == "image"
    [media] = message.media
    assert media.url and media.url.startswith("http")
    assert media.mime_type and media.mime_type.startswith("image/")


def test_audio_attachment_without_content(chatwoot: Chatwoot) -> None:
    message = chatwoot("message_created_attachment_audio").data.message
    assert message is not None
    assert message.kind == "audio"
    assert message.text is None
    assert len(message.media) == 1


def test_message_updated_takes_status_from_the_conversation_copy(chatwoot: Chatwoot) -> None:
    event = chatwoot("message_updated")
    assert event.type == "chat.message.updated"
    assert event.data.message is not None
    assert event.data.message.status == "read"


def test_conversation_created_without_account_object(chatwoot: Chatwoot) -> None:
    event = chatwoot("conversation_created")
    assert event.type == "chat.conversation.created"
    assert event.partitionkey == "src:4711"
    assert event.time == "2026-07-14T13:12:40.000Z"  # epoch seconds
    assert event.data.conversation is not None and event.data.conversation.id == "4711"
    assert event.data.contact is not None and event.data.contact.id == "18342"


def test_conversation_created_with_account_object(chatwoot: Chatwoot) -> None:
    data = chatwoot("conversation_created_v4_15_account").data
    assert data.account is not None and data.account.id == "7"


def test_conversation_updated_changes(chatwoot: Chatwoot) -> None:
    event = chatwoot("conversation_updated")
    assert event.type == "chat.conversation.updated"
    assert event.data.account is not None and event.data.account.id == "7"  # from messages[]
    changes = event.data.changes
    assert changes is not None
    assert changes["assignee_id"].previous is None
    assert changes["assignee_id"].current == 31
    assert changes["team_id"].current == 2


def test_conversation_status_changed(chatwoot: Chatwoot) -> None:
    event = chatwoot("conversation_status_changed")
    assert event.type == "chat.conversation.status_changed"
    conversation = event.data.conversation
    assert conversation is not None
    assert conversation.status == "resolved"
    assert conversation.labels == ["lead-quente", "venda-fechada"]
    assert event.data.changes is None  # Chatwoot sends changed_attributes: null here


def test_typing_by_agent_and_by_widget_contact(chatwoot: Chatwoot) -> None:
    on = chatwoot("conversation_typing_on")
    assert on.type == "chat.typing.started"
    assert on.data.actor is not None and on.data.actor.type == "agent"
    assert on.data.typing is not None
    off = chatwoot("conversation_typing_off")
    assert off.type == "chat.typing.stopped"
    assert off.data.actor is not None and off.data.actor.type == "contact"


def test_widget_opened(chatwoot: Chatwoot) -> None:
    event = chatwoot("webwidget_triggered")
    assert event.type == "chat.widget.opened"
    widget = event.data.widget
    assert widget is not None
    assert widget.language == "pt_BR"
    assert widget.initiated_at == "2026-07-14T14:02:09.000Z"  # JS Date string, GMT-0300
    assert event.time == widget.initiated_at


def test_widget_opened_without_conversation(chatwoot: Chatwoot) -> None:
    event = chatwoot("webwidget_triggered_no_conversation")
    assert event.data.conversation is None
    assert event.data.contact is not None
    assert event.partitionkey == f"src:contact/{event.data.contact.id}"


def test_contact_events(chatwoot: Chatwoot) -> None:
    created = chatwoot("contact_created")
    assert created.type == "chat.contact.created"
    assert created.data.contact is not None and created.data.contact.id == "18342"
    assert created.partitionkey == "src:contact/18342"
    updated = chatwoot("contact_updated")
    assert updated.type == "chat.contact.updated"
    assert updated.data.changes is not None
    assert updated.data.changes["email"].current == "maria.silva@gmail.com"
    assert updated.data.contact is not None
    assert updated.data.contact.custom_attributes == {"cidade": "Maringá", "cpf": "123.456.789-09"}


def test_automation_event_maps_like_its_name(chatwoot: Chatwoot) -> None:
    event = chatwoot("automation_event_conversation_updated")
    assert event.type == "chat.conversation.updated"
    assert event.data.provider_event == "automation_event.conversation_updated"


def test_automation_message_event_with_a_conversation_body(chatwoot: Chatwoot) -> None:
    body = json.loads(fixture_bytes("chatwoot/conversation_status_changed.json"))
    body["event"] = "automation_event.message_created"
    [event] = normalize("chatwoot", json.dumps(body).encode())
    assert event.type == "chat.message.created"
    assert event.data.message is not None and event.data.message.id == "982520"
    assert event.data.conversation is not None and event.data.conversation.id == "4711"


@pytest.mark.parametrize("name", ["nexloo_seed_message_created", "trino_seed_message_created"])
def test_white_label_doc_examples(chatwoot: Chatwoot, name: str) -> None:
    event = chatwoot(name)
    assert event.type == "chat.message.created"
    assert event.data.conversation is not None and event.data.conversation.id == "1"
    assert event.data.account is not None and event.data.account.id == "1"
    assert event.data.message is not None and event.data.message.text == "Hi"
    assert event.time.endswith("Z") and event.time != RECEIVED_AT


def test_white_label_extra_keys_are_tolerated(chatwoot: Chatwoot) -> None:
    plain = chatwoot("message_created")
    extra = chatwoot("whitelabel_extra_keys")
    assert extra.data.message == plain.data.message
    assert extra.id == plain.id


def test_message_type_as_string_or_int() -> None:
    for message_type in ("incoming", 0, "0"):
        body = {"event": "message_created", "id": 1, "message_type": message_type}
        [event] = normalize("chatwoot", json.dumps(body).encode())
        assert event.data.message is not None
        assert event.data.message.direction == "incoming"
    for odd in ("²", "9", 99, -1, True):
        body = {"event": "message_created", "id": 1, "message_type": odd}
        [event] = normalize("chatwoot", json.dumps(body).encode())
        assert event.data.message is not None and event.data.message.direction is None


def test_ids_are_deterministic_and_source_scoped(chatwoot: Chatwoot) -> None:
    body = fixture_bytes("chatwoot/conversation_updated.json")
    [a] = normalize("chatwoot", body)
    [b] = normalize("chatwoot", body)
    [c] = normalize("chatwoot", body, source="other")
    assert a.id == b.id != c.id
    [changed] = normalize("chatwoot", body.replace(b"4711", b"4712"))
    assert changed.id != a.id


def test_delivery_id_is_kept() -> None:
    body = fixture_bytes("chatwoot/message_created.json")
    [event] = normalize("chatwoot", body, delivery_id="abc")
    assert event.providerdelivery == "abc"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[]", "not_an_object"),
        (b"{}", "missing_event"),
        (b'{"event": null}', "missing_event"),
        (b'{"event": "inbox_created"}', "unknown_event"),
    ],
)
def test_unmappable_bodies(body: bytes, reason: str) -> None:
    with pytest.raises(Unmappable) as caught:
        normalize("chatwoot", body)
    assert caught.value.reason == reason


def test_malformed_body() -> None:
    with pytest.raises(MalformedBody):
        normalize("chatwoot", b'{"event": ')


def test_wrong_types_everywhere_do_not_crash() -> None:
    body = {
        "event": "message_created",
        "id": {"nested": True},
        "content": ["list"],
        "message_type": None,
        "sender": "a string",
        "conversation": [1, 2],
        "account": 5,
        "inbox": None,
        "attachments": {"not": "a list"},
        "created_at": "yesterday",
        "changed_attributes": "nope",
    }
    [event] = normalize("chatwoot", json.dumps(body).encode())
    assert event.type == "chat.message.created"
    assert event.time == RECEIVED_AT
    assert event.partitionkey == "src"
