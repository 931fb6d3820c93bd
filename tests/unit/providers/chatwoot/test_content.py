"""Schema 1.1 meaning of Chatwoot messages: what each content shape says, not only its type.

Fixtures are built from Chatwoot's own builders (tests/fixtures/README.md says which)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from relay.events import CloudEvent, Message
from relay.providers.chatwoot import content
from relay.providers.coerce import as_str
from tests.factories import RECEIVED_AT, normalize
from tests.support import fixture_bytes

Chatwoot = Callable[[str], CloudEvent]


def message_of(event: CloudEvent) -> Message:
    assert event.data.message is not None
    return event.data.message


def test_location_attachment_has_coordinates_and_title(chatwoot: Chatwoot) -> None:
    message = message_of(chatwoot("message_created_location"))
    assert message.kind == "location"
    assert message.location is not None
    assert (message.location.latitude, message.location.longitude) == (-23.4205, -51.9386)
    assert message.location.name and message.location.name.startswith("Loja Centro")
    assert message.media == []  # a location is not an empty media entry any more


def test_shared_contact_card_keeps_every_phone_in_e164(chatwoot: Chatwoot) -> None:
    message = message_of(chatwoot("message_created_contact_card"))
    assert message.kind == "contact"
    [card] = message.shared_contacts
    assert card.name == "João Pereira"
    assert card.phones == ["+5544988887777", "+554430301234"]
    assert message.shared_contact == card


def test_each_attachment_keeps_its_own_kind(chatwoot: Chatwoot) -> None:
    message = message_of(chatwoot("message_created_multi_attachment"))
    assert [(m.kind, m.mime_type) for m in message.media] == [
        ("image", "image/jpeg"),
        ("video", "video/mp4"),
        ("document", "application/pdf"),
    ]
    assert message.media[0].width == 1280 and message.media[2].size == 88211


def test_whatsapp_business_app_echo_is_a_human_agent(chatwoot: Chatwoot) -> None:
    event = chatwoot("message_created_whatsapp_echo")
    assert event.data.actor is not None and event.data.actor.type == "agent"
    # the conversation's contact is still the customer
    assert event.data.contact is not None and event.data.contact.phone == "+5544999990001"


def test_bot_prompt_without_sender_is_still_a_bot(chatwoot: Chatwoot) -> None:
    event = chatwoot("message_created_bot_null_sender")
    assert event.data.actor is not None and event.data.actor.type == "bot"


def test_template_params_give_name_language_header_and_values(chatwoot: Chatwoot) -> None:
    message = message_of(chatwoot("message_created_template_params"))
    assert message.kind == "template"
    template = message.template
    assert template is not None
    assert (template.name, template.language, template.category) == (
        "pedido_enviado",
        "pt_BR",
        "UTILITY",
    )
    assert template.header is not None and template.header.kind == "image"
    assert template.header.url == "https://cdn.lojaexemplo.com.br/templates/caixa.jpg"
    assert template.params is not None and template.params["body"]["2"] == "#10482"
    assert template.text and "BR123456789BR" in template.text


def test_external_error_is_a_code_and_a_detail(chatwoot: Chatwoot) -> None:
    event = chatwoot("message_updated_failed_external_error")
    message = message_of(event)
    assert message.status == "failed"
    assert message.error is not None
    assert (message.error.code, message.error.detail) == ("131047", "Re-engagement message")
    # the time of the change, from the conversation's copy of the message
    assert event.time == "2026-07-15T09:12:03.551Z" == message.updated_at
    assert message.created_at == "2026-07-14T13:18:01.865Z"


def test_deleted_message_is_its_own_event_with_its_own_id(chatwoot: Chatwoot) -> None:
    deleted = chatwoot("message_updated_deleted")
    assert deleted.type == "chat.message.deleted"
    assert message_of(deleted).id == "982507"
    assert deleted.time == "2026-07-15T09:20:44.010Z"
    body = json.loads(fixture_bytes("chatwoot/message_updated_deleted.json"))
    body["event"] = "message_created"
    [created] = normalize("chatwoot", json.dumps(body).encode())
    assert created.type == "chat.message.created" and created.id != deleted.id


def test_csat_rating_and_feedback_and_who_answered(chatwoot: Chatwoot) -> None:
    event = chatwoot("message_updated_csat_submitted")
    message = message_of(event)
    assert message.kind == "csat"
    assert message.csat is not None
    assert (message.csat.rating, message.csat.feedback) == (
        4,
        "Resolveram rápido, mas a entrega atrasou",
    )
    # the survey was sent by a bot, but the change (the answer) is the contact's
    assert message.sender is not None and message.sender.type == "bot"
    assert event.data.actor is not None and event.data.actor.type == "contact"
    assert event.data.actor.phone == "+5544999990001"


def test_input_select_options_and_the_chosen_one(chatwoot: Chatwoot) -> None:
    message = message_of(chatwoot("message_updated_input_select"))
    assert message.kind == "select"
    assert [o.id for o in message.options] == ["track", "exchange", "human"]
    assert message.reply is not None
    assert (message.reply.id, message.reply.title) == ("exchange", "Trocar produto")


def test_cards_with_media_and_buttons(chatwoot: Chatwoot) -> None:
    message = message_of(chatwoot("message_created_cards"))
    [card] = message.cards
    assert card.title == "Garrafa térmica 1L" and card.text == "R$ 89,90"
    assert (
        card.media is not None and card.media.url == "https://cdn.lojaexemplo.com.br/p/garrafa.jpg"
    )
    assert [(b.type, b.url or b.id) for b in card.buttons] == [
        ("url", "https://lojaexemplo.com.br/p/garrafa"),
        ("postback", "buy_garrafa"),
    ]


def test_form_fields_with_submitted_values(chatwoot: Chatwoot) -> None:
    message = message_of(chatwoot("message_updated_form_submitted"))
    assert {f.name: f.value for f in message.form} == {
        "email": "maria@example.com",
        "pedido": "10482",
    }


def test_snoozed_until(chatwoot: Chatwoot) -> None:
    conversation = chatwoot("conversation_status_changed_snoozed").data.conversation
    assert conversation is not None and conversation.status == "snoozed"
    assert conversation.snoozed_until == "2026-07-16T12:00:00.000Z"


def test_conversation_update_time_is_the_change(chatwoot: Chatwoot) -> None:
    event = chatwoot("conversation_updated")
    changes = event.data.changes
    assert changes is not None and "updated_at" in changes
    assert event.time != RECEIVED_AT


def test_unmodelled_fields_pass_through_bounded_and_without_secrets(chatwoot: Chatwoot) -> None:
    event = chatwoot("message_created_location")
    extensions = event.data.extensions
    assert extensions is not None
    chatwoot_ext = extensions["chatwoot"]
    assert chatwoot_ext["message"]["source_id"].startswith("wamid.")
    conversation = chatwoot_ext["conversation"]
    assert conversation["can_reply"] is True and conversation["unread_count"] == 1
    # the widget's pubsub_token is a credential: never passed through
    assert "pubsub_token" not in conversation["contact_inbox"]
    assert conversation["contact_inbox"]["source_id"] == "5544999990001"
    # modelled keys are not repeated
    assert "content" not in chatwoot_ext["message"]
    assert "meta" not in conversation


def test_white_label_extra_keys_are_kept(chatwoot: Chatwoot) -> None:
    extensions = chatwoot("whitelabel_extra_keys").data.extensions
    assert extensions is not None
    kept = extensions["chatwoot"]
    assert kept["message"]["tenant"]["slug"] == "lojaexemplo"
    assert kept["message"]["nexloo_version"] == "3.4.2"
    assert kept["conversation"]["kanban"]["stage"] == "negociacao"


def test_contact_event_extensions_do_not_repeat_what_is_typed(chatwoot: Chatwoot) -> None:
    event = chatwoot("contact_updated")
    assert event.data.changes is not None and "email" in event.data.changes
    extensions = event.data.extensions
    kept = extensions["chatwoot"]["contact"] if extensions else {}
    assert not {"event", "changed_attributes", "email", "name"} & set(kept)


def test_a_read_receipt_is_timed_when_it_was_read_not_when_it_was_sent(chatwoot: Chatwoot) -> None:
    event = chatwoot("message_updated")
    message = message_of(event)
    assert message.status == "read"
    assert message.created_at == "2026-07-14T13:21:07.331Z"
    # the conversation's copy of the message says when it changed (1.0 used created_at)
    assert event.time == "2026-07-14T13:21:48.738Z" == message.updated_at


def test_an_update_without_a_time_of_its_own_is_timed_on_receipt() -> None:
    body = json.loads(fixture_bytes("chatwoot/message_updated.json"))
    body["conversation"]["messages"] = []
    [event] = normalize("chatwoot", json.dumps(body).encode())
    assert event.time == RECEIVED_AT


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text())


def _message_type_by_words(value: Any) -> str | None:
    """What message_type made of a value before its exact words were looked up first."""
    if isinstance(value, int) and not isinstance(value, bool):
        return {0: "incoming", 1: "outgoing", 2: "activity", 3: "template"}.get(value)
    text = as_str(value)
    if text is None:
        return None
    text = text.strip().lower()
    if text.isascii() and text.isdigit():
        return {0: "incoming", 1: "outgoing", 2: "activity", 3: "template"}.get(int(text))
    return text


@given(
    st.sampled_from(["incoming", "outgoing", "activity", "template", " Incoming", "OUTGOING"])
    | _SCALARS
)
def test_message_types_sent_as_words_read_as_before(value: Any) -> None:
    assert content.message_type(value) == _message_type_by_words(value)


def test_messages_without_attachments_do_not_share_their_lists() -> None:
    first = content.message({"id": 1, "message_type": "incoming"}, None, None)
    second = content.message({"id": 2, "message_type": "incoming", "attachments": []}, None, None)
    assert first.media == second.media == [] and first.shared_contacts == []
    assert first.media is not second.media
