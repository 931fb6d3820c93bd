"""Schema 1.1 meaning of Z-API callbacks (PlugChat): coordinates, phones, chosen options,
prices, who sent it and when it changed. Fixtures follow Z-API's on-message-received docs."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from relay.events import CloudEvent, Message, Money
from tests.factories import normalize
from tests.support import fixture_bytes

PlugChat = Callable[[str], list[CloudEvent]]


def one(plugchat: PlugChat, path: str) -> CloudEvent:
    [event] = plugchat(path)
    return event


def message_of(event: CloudEvent) -> Message:
    assert event.data.message is not None
    return event.data.message


def brl(amount: int) -> Money:
    return Money(amount=amount, currency="BRL")


def test_location_coordinates(plugchat: PlugChat) -> None:
    location = message_of(one(plugchat, "receiveMessage/location")).location
    assert location is not None
    assert (location.latitude, location.longitude) == (-23.4205, -51.9386)
    assert location.name == "Loja Centro" and location.address and "Maringá" in location.address


def test_contact_card_phones_in_e164_and_email_from_vcard(plugchat: PlugChat) -> None:
    [card] = message_of(one(plugchat, "receiveMessage/contact_card")).shared_contacts
    assert card.name == "João Pereira"
    assert card.phones == ["+5544988887777"]
    assert card.emails == ["joao@example.com"]


def test_contact_card_without_phones_reads_the_vcard(plugchat: PlugChat) -> None:
    [card] = message_of(one(plugchat, "receiveMessage/contact_vcard_only")).shared_contacts
    assert card.phones == ["+554430301234", "+5544977776666"]


def test_poll_question_options_and_limit(plugchat: PlugChat) -> None:
    event = one(plugchat, "receiveMessage/poll")
    poll = message_of(event).poll
    assert poll is not None
    assert poll.question == "Qual horário prefere para a entrega?"
    assert poll.options == ["Manhã", "Tarde", "Noite"] and poll.max_selections == 1


def test_poll_vote_names_the_choice_and_the_poll(plugchat: PlugChat) -> None:
    message = message_of(one(plugchat, "receiveMessage/poll_vote"))
    assert message.poll_vote is not None
    assert message.poll_vote.options == ["Tarde"]
    assert message.poll_vote.poll_message_id == "3EB0PO01" == message.in_reply_to


def test_product_price_in_minor_units(plugchat: PlugChat) -> None:
    product = message_of(one(plugchat, "receiveMessage/product")).product
    assert product is not None
    assert (product.title, product.retailer_id) == ("Garrafa térmica 1L", "GAR-1L")
    assert product.price == brl(8990)
    assert product.seller == "+554430309000"


def test_cart_items_quantities_and_total(plugchat: PlugChat) -> None:
    order = message_of(one(plugchat, "receiveMessage/order_cart")).order
    assert order is not None
    assert [(i.title, i.quantity, i.price) for i in order.items] == [
        ("Garrafa térmica 1L", 2, brl(8990)),
        ("Caneca 350ml", 1, brl(2990)),
    ]
    assert order.total == brl(20970) and order.item_count == 3
    assert sum((i.quantity or 0) * (i.price.amount if i.price else 0) for i in order.items) == 20970


def test_order_request_totals(plugchat: PlugChat) -> None:
    event = one(plugchat, "sendingMessage/order_review_and_pay")
    order = message_of(event).order
    assert order is not None
    assert (order.id, order.reference_id, order.status) == ("4N9AVI38VYZ", "4N9AVI38VOB", "pending")
    assert (order.subtotal, order.discount, order.shipping, order.tax, order.total) == (
        brl(20970),
        brl(1000),
        brl(1500),
        brl(100),
        brl(21570),
    )
    assert [i.custom for i in order.items] == [False, True]


def test_template_text_header_footer_and_buttons(plugchat: PlugChat) -> None:
    message = message_of(one(plugchat, "receiveMessage/template_image_header"))
    template = message.template
    assert template is not None and message.kind == "template"
    assert template.id == "674504507982622" and template.footer == "Loja Exemplo"
    assert template.text and template.text.startswith("Olá Maria")
    assert template.header is not None and template.header.kind == "image"
    assert template.header.url == "https://cdn.lojaexemplo.com.br/templates/caixa.jpg"
    assert [(b.type, b.url or b.phone or b.id) for b in template.buttons] == [
        ("url", "https://lojaexemplo.com.br/r/BR123456789BR"),
        ("call", "+554430309000"),
        ("reply", "nao_recebi"),
    ]


def test_buttons_message_offers_its_options_under_its_image(plugchat: PlugChat) -> None:
    message = message_of(one(plugchat, "receiveMessage/buttons_message_image"))
    assert (message.kind, message.text) == ("buttons", "Texto da mensagem")
    assert [(m.kind, m.url) for m in message.media] == [("image", "URL da imagem")]
    assert [(o.id, o.title) for o in message.options] == [
        ("1", "Texto do botão 1"),
        ("2", "Texto do botão 2"),
    ]


def test_carousel_cards_keep_their_text_image_and_buttons(plugchat: PlugChat) -> None:
    event = one(plugchat, "receiveMessage/carousel")
    message = message_of(event)
    assert (message.kind, message.text, message.direction) == (
        "carousel",
        "Texto da mensagem",
        "outgoing",
    )
    assert message.sender is not None and message.sender.type == "bot"  # fromApi
    assert len(message.cards) == 2
    for card in message.cards:
        assert card.text == "Mensagem do cartão do carrosel"
        assert card.title is None and card.footer is None  # "" is no title
        assert card.media is not None
        assert (card.media.kind, card.media.url, card.media.mime_type) == (
            "image",
            "https://",
            "image/jpeg",
        )
        assert [(b.type, b.title, b.url, b.id) for b in card.buttons] == [
            ("url", "Texto do botão", "https://", None),
            ("reply", "Texto do botão", None, "2"),
        ]


def test_pix_key_is_named_and_kept_whole(plugchat: PlugChat) -> None:
    event = one(plugchat, "receiveMessage/pix_key")
    assert message_of(event).kind == "pix"
    extensions = event.data.extensions
    assert extensions is not None
    assert extensions["plugchat"]["content"] == {
        "currency": "BRL",
        "referenceId": "4PXRAHSIRDA",
        "key": "pixkey",
        "keyType": "EVP",
        "merchantName": "Pix",
    }


def _template_buttons(buttons: list[object]) -> list[tuple[str, str | None, str | None]]:
    body = json.loads(fixture_bytes("plugchat/receiveMessage/template_image_header.json"))
    body["hydratedTemplate"]["hydratedButtons"] = buttons
    [event] = normalize("plugchat", json.dumps(body).encode(), kind="receiveMessage")
    template = message_of(event).template
    assert template is not None
    return [(b.type, b.title, b.id or b.phone or b.url) for b in template.buttons]


def test_template_buttons_of_every_kind_and_junk_between_them() -> None:
    # copyButton/copyCodeButton are relay's reading of WhatsApp's copy-code buttons; Z-API's
    # docs show its OTP template with the code in a urlButton's url instead, which keeps it.
    # A Button has no field for a code: a labelled copy button's code is not kept.
    buttons = [
        {"index": 0, "copyCodeButton": {"displayText": "Copiar", "code": "otp123"}},
        "a string",
        {"index": 1, "copyButton": {"code": "PIX-KEY"}},
        None,
        {"index": 2, "callButton": {"displayText": "Ligar", "phoneNumber": "not a phone"}},
        {"index": 3},  # nothing relay can name: skipped
        {"buttonId": "b7", "buttonText": {"displayText": "Sim"}, "type": 1},
    ]
    assert _template_buttons(buttons) == [
        ("copy", "Copiar", None),
        ("copy", "PIX-KEY", None),  # no label: the code is what the button shows
        ("call", "Ligar", "not a phone"),  # not a number: kept as sent
        ("reply", "Sim", "b7"),
    ]


def test_button_and_list_replies_name_the_choice(plugchat: PlugChat) -> None:
    button = message_of(one(plugchat, "receiveMessage/buttons_response")).reply
    listed = message_of(one(plugchat, "receiveMessage/list_response")).reply
    raw_button = json.loads(fixture_bytes("plugchat/receiveMessage/buttons_response.json"))
    raw_list = json.loads(fixture_bytes("plugchat/receiveMessage/list_response.json"))
    assert button is not None and listed is not None
    assert button.id == raw_button["buttonsResponseMessage"]["buttonId"]
    assert button.message_id == raw_button.get("referenceMessageId")
    assert listed.id == raw_list["listResponseMessage"]["selectedRowId"]
    assert listed.title == raw_list["listResponseMessage"]["title"]


def test_reaction_and_its_removal(plugchat: PlugChat) -> None:
    given = message_of(one(plugchat, "receiveMessage/reaction")).reaction
    removed = message_of(one(plugchat, "receiveMessage/reaction_removed")).reaction
    assert given is not None and given.emoji and not given.removed
    assert removed is not None and removed.removed and removed.emoji is None
    assert removed.message_id == "3EB02F6A1C9B8D7E6F51"
    assert removed.reacted_at == "2026-07-14T16:08:20.000Z"


def test_ad_referral(plugchat: PlugChat) -> None:
    referral = message_of(one(plugchat, "receiveMessage/from_ad")).referral
    assert referral is not None
    assert (referral.source_type, referral.source_id) == ("ad", "23722824350495506")
    assert referral.title == "Garrafa térmica 1L" and referral.click_id
    assert referral.source_url == "https://fb.me/1AbCdEfGh"


def test_view_once_and_voice_note(plugchat: PlugChat) -> None:
    image = message_of(one(plugchat, "receiveMessage/image_view_once"))
    voice = message_of(one(plugchat, "receiveMessage/voice_note"))
    assert image.view_once is True and image.media[0].kind == "image"
    [audio] = voice.media
    assert (audio.kind, audio.voice, audio.duration_seconds) == ("audio", True, 10)
    assert voice.view_once is False


def test_edit_is_an_update_with_its_own_id_and_time(plugchat: PlugChat) -> None:
    original = one(plugchat, "receiveMessage/text")
    edit = one(plugchat, "receiveMessage/edited")
    assert edit.type == "chat.message.updated"
    assert message_of(edit).id == message_of(original).id
    assert edit.id != original.id  # deduplication must not drop the edit
    assert edit.time == "2026-07-14T16:10:00.912Z" == message_of(edit).updated_at
    assert message_of(edit).edited is True
    # a second edit of the same message is another event
    body = json.loads(fixture_bytes("plugchat/receiveMessage/edited.json"))
    body["momment"] += 60_000
    [again] = normalize("plugchat", json.dumps(body).encode(), kind="receiveMessage")
    assert again.type == "chat.message.updated" and again.id != edit.id
    assert message_of(edit).text and message_of(edit).text.endswith("hoje?")  # type: ignore[union-attr]


def test_revocation_is_a_deletion_event(plugchat: PlugChat) -> None:
    original = one(plugchat, "receiveMessage/text")
    deleted = one(plugchat, "receiveMessage/revoked")
    assert deleted.type == "chat.message.deleted"
    assert message_of(deleted).id == message_of(original).id and deleted.id != original.id
    assert deleted.time == "2026-07-14T16:11:40.333Z"


def test_missed_call_keeps_its_call_id(plugchat: PlugChat) -> None:
    event = one(plugchat, "receiveMessage/call_missed")
    assert message_of(event).kind == "call"
    extensions = event.data.extensions
    assert extensions is not None
    assert extensions["plugchat"]["message"]["callId"] == "F44E0E2011E7C784BB9A4AC11749C436"


def test_business_phone_message_names_the_customer_not_the_business(plugchat: PlugChat) -> None:
    event = one(plugchat, "sendingMessage/from_business_phone")
    contact, actor = event.data.contact, event.data.actor
    assert contact is not None and actor is not None
    assert contact.phone == "+5544999990001" and contact.name == "Maria da Silva"
    assert contact.avatar_url and "loja.jpg" not in contact.avatar_url
    # typed on the WhatsApp Business app: a person, not a bot
    assert (actor.type, actor.name, actor.phone) == ("agent", "Loja Exemplo", "+554430309000")
    assert message_of(event).direction == "outgoing" and message_of(event).status == "sent"


def test_api_echo_names_the_customer_and_a_bot_sender(plugchat: PlugChat) -> None:
    event = one(plugchat, "sendingMessage/text_from_api")
    assert event.data.contact is not None and event.data.contact.name == "Maria da Silva"
    assert event.data.actor is not None and event.data.actor.type == "bot"


def test_newsletter_and_broadcast_flags_pass_through(plugchat: PlugChat) -> None:
    event = one(plugchat, "sendingMessage/broadcast_newsletter")
    contact = event.data.contact
    assert contact is not None and contact.phone is None
    assert contact.chat_id == "120363166555745933@newsletter"
    extensions = event.data.extensions
    assert extensions is not None
    assert extensions["plugchat"]["message"]["isNewsletter"] is True
    assert extensions["plugchat"]["message"]["broadcast"] is True


def test_sender_lid_and_link_preview_pass_through(plugchat: PlugChat) -> None:
    extensions = one(plugchat, "receiveMessage/from_ad").data.extensions
    assert extensions is not None
    assert extensions["plugchat"]["message"]["senderLid"] == "81896604192873@lid"
    assert extensions["plugchat"]["content"]["description"] == "Garrafa térmica 1L por R$ 89,90"
    assert "message" not in extensions["plugchat"]["content"]  # modelled as message.text


def test_delivery_error_code_and_detail() -> None:
    body = {
        "type": "DeliveryCallback",
        "phone": "5544999990001",
        "zaapId": "Z1",
        "messageId": "M1",
        "instanceId": "I1",
        "error": "Número não existe no WhatsApp",
        "errorCode": 404,
    }
    [event] = normalize("plugchat", json.dumps(body).encode(), kind="messageDeliveryError")
    assert event.type == "chat.message.failed"
    error = message_of(event).error
    assert error is not None and (error.code, error.detail) == ("404", body["error"])


@pytest.mark.parametrize(
    ("status", "expected"), [("SENT", "sent"), ("RECEIVED", "delivered"), ("READ", "read")]
)
def test_outgoing_status_words(status: str, expected: str) -> None:
    body = {
        "type": "MessageStatusCallback",
        "ids": ["a"],
        "status": status,
        "phone": "5544999990001",
    }
    [event] = normalize("plugchat", json.dumps(body).encode(), kind="messageStatus")
    assert message_of(event).status == expected


def test_business_message_in_a_group_names_the_group_and_the_business() -> None:
    body = json.loads(fixture_bytes("plugchat/receiveMessage/group_text.json"))
    body.update(fromMe=True, fromApi=False, senderName="Loja Exemplo", status="SENT")
    [event] = normalize("plugchat", json.dumps(body).encode(), kind="sendingMessage")
    contact, actor = event.data.contact, event.data.actor
    assert contact is not None and contact.id == body["phone"] and contact.phone is None
    assert contact.name == body["chatName"]
    assert actor is not None and (actor.type, actor.name) == ("agent", "Loja Exemplo")
    assert message_of(event).status == "sent"
