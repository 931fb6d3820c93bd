"""PlugChat payloads (seed docs, Z-API callback shapes) → canonical events."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from relay.cloudevents import encode
from relay.events import CloudEvent
from relay.providers import Inbound, Unmappable
from relay.providers.plugchat import KINDS, PROVIDER, canonical_kind
from tests.factories import RECEIVED_AT, normalize
from tests.support import FIXTURES

PlugChat = Callable[[str], list[CloudEvent]]


def one(plugchat: PlugChat, path: str) -> CloudEvent:
    [event] = plugchat(path)
    return event


@pytest.mark.parametrize("kind", KINDS)
def test_kind_spellings(kind: str) -> None:
    kebab = "".join(f"-{c.lower()}" if c.isupper() else c for c in kind)
    assert canonical_kind(kind) == kind
    assert canonical_kind(kebab) == kind
    assert canonical_kind(kind.lower()) == kind
    assert canonical_kind("nonsense") is None


def test_finish_attendance_seed_keeps_everything(plugchat: PlugChat) -> None:
    event = one(plugchat, "finishAttendance/seed_category")
    assert event.type == "chat.conversation.status_changed"
    assert event.subject == "attendance/1492"
    assert event.partitionkey == "src:554499999999"
    assert event.time == "2022-04-27T13:18:01.865Z"  # endTime, epoch ms
    conversation = event.data.conversation
    assert conversation is not None
    assert (conversation.status, conversation.provider_status) == ("resolved", "FINISH")
    attendance = conversation.attendance
    assert attendance is not None
    assert attendance.number == "1492"
    assert attendance.department == "Nome do departamento"  # from `departament`
    assert attendance.finished_by == "Nome do operador"
    assert attendance.operator_report == "Relato do operador"  # key had a trailing space
    assert attendance.rating_note == "Observação do cliente"
    assert attendance.requested_at == "2022-04-27T13:17:52.000Z"
    assert attendance.started_at == "2022-04-27T13:17:51.166Z"
    assert [(c.id, c.name, c.color) for c in attendance.categories] == [
        ("id da categoria", "nome da categoria", "#DDDD")
    ]
    # both transcript entries survive the duplicate "ID_DA_MENSAGEM" keys, in time order
    assert [m.text for m in attendance.transcript] == ["mensagem enviada", "só um momento"]
    assert [m.direction for m in attendance.transcript] == ["incoming", "outgoing"]
    assert event.data.contact is not None
    assert (event.data.contact.name, event.data.contact.phone) == ("nome", "+554499999999")
    assert event.data.actor is not None and event.data.actor.name == "Nome do operador"


def test_finish_attendance_category_list(plugchat: PlugChat) -> None:
    attendance = one(plugchat, "finishAttendance/seed_categories").data.conversation
    assert attendance is not None and attendance.attendance is not None
    categories = attendance.attendance.categories
    assert [(c.id, c.name, c.item_id, c.item_name) for c in categories] == [
        ("id_categoria", "Padrão", "id_item_vinculado_na_categoria", "Nome do item"),
        ("id_categoria", "nome_categoria", "id_item_vinculado_na_categoria", "Nome do item"),
    ]


def test_finish_attendance_with_both_category_formats(plugchat: PlugChat) -> None:
    conversation = one(plugchat, "finishAttendance/both_category_formats").data.conversation
    assert conversation is not None and conversation.attendance is not None
    attendance = conversation.attendance
    assert len(attendance.categories) >= 2
    assert len(attendance.transcript) >= 2
    times = [m.created_at for m in attendance.transcript if m.created_at]
    assert times == sorted(times)


def test_legacy_finish_attendance(plugchat: PlugChat) -> None:
    event = one(plugchat, "finishAttendance/legacy_2022")
    assert event.data.conversation is not None
    assert event.data.conversation.status == "resolved"


@pytest.mark.parametrize("name", ["seed", "realistic"])
def test_start_attendance(plugchat: PlugChat, name: str) -> None:
    event = one(plugchat, f"startAttendance/{name}")
    assert event.type == "chat.conversation.status_changed"
    conversation = event.data.conversation
    assert conversation is not None and conversation.status == "open"
    assert conversation.attendance is not None and conversation.attendance.operator
    assert event.data.actor is not None and event.data.actor.type == "agent"


def test_start_and_finish_share_the_chat_partition(plugchat: PlugChat) -> None:
    start = one(plugchat, "startAttendance/seed")
    finish = one(plugchat, "finishAttendance/seed_category")
    assert start.partitionkey == finish.partitionkey
    assert start.id != finish.id


def test_received_text(plugchat: PlugChat) -> None:
    event = one(plugchat, "receiveMessage/text")
    assert event.type == "chat.message.created"
    assert event.partitionkey == "src:5544999990001"
    assert event.time == "2026-07-14T16:05:12.448Z"
    message = event.data.message
    assert message is not None
    # 1.1: an incoming message's RECEIVED is not a delivery receipt (1.0 said "delivered")
    assert (message.kind, message.direction, message.status) == ("text", "incoming", None)
    assert message.provider_status == "RECEIVED"
    assert message.text and message.text.startswith("Bom dia!")
    contact = event.data.contact
    assert contact is not None
    assert contact.phone == "+5544999990001"
    assert contact.chat_id == "81896604192873@lid"  # chatLid kept as an id
    assert event.data.actor is not None and event.data.actor.type == "contact"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("image", "image"),
        ("audio", "audio"),
        ("video", "video"),
        ("document", "document"),
        ("sticker", "sticker"),
    ],
)
def test_received_media(plugchat: PlugChat, name: str, kind: str) -> None:
    message = one(plugchat, f"receiveMessage/{name}").data.message
    assert message is not None and message.kind == kind
    [media] = message.media
    assert media.url and media.url.startswith("http")
    assert media.mime_type


def test_received_location(plugchat: PlugChat) -> None:
    message = one(plugchat, "receiveMessage/location").data.message
    assert message is not None and message.location is not None
    assert message.location.latitude is not None and message.location.longitude is not None


def test_received_contact_card(plugchat: PlugChat) -> None:
    message = one(plugchat, "receiveMessage/contact").data.message
    assert message is not None and message.shared_contact is not None
    assert message.shared_contact.vcard and "BEGIN:VCARD" in message.shared_contact.vcard
    assert all(p.startswith("+") for p in message.shared_contact.phones)


def test_received_reaction(plugchat: PlugChat) -> None:
    message = one(plugchat, "receiveMessage/reaction").data.message
    assert message is not None and message.reaction is not None
    assert message.reaction.emoji and message.reaction.message_id


@pytest.mark.parametrize(
    ("name", "kind"), [("buttons_response", "button_reply"), ("list_response", "list_reply")]
)
def test_received_replies(plugchat: PlugChat, name: str, kind: str) -> None:
    message = one(plugchat, f"receiveMessage/{name}").data.message
    assert message is not None and message.kind == kind
    assert message.reply is not None and message.reply.id


def test_waiting_message(plugchat: PlugChat) -> None:
    message = one(plugchat, "receiveMessage/waiting_message").data.message
    assert message is not None and message.kind == "waiting"


def test_group_message(plugchat: PlugChat) -> None:
    event = one(plugchat, "receiveMessage/group_text")
    assert event.data.contact is not None
    assert event.data.contact.phone is None  # a group id is not a phone
    assert event.data.contact.chat_id == "120363041234567890-group"
    assert event.partitionkey == "src:120363041234567890-group"
    assert event.data.actor is not None and event.data.actor.type == "contact"
    assert event.data.actor.phone and event.data.actor.phone.startswith("+")


def test_lid_is_never_made_a_phone(plugchat: PlugChat) -> None:
    event = one(plugchat, "receiveMessage/lid_phone")
    assert event.data.contact is not None
    assert event.data.contact.phone is None
    assert event.data.contact.chat_id == "123456789012345@lid"


def test_momment_in_seconds(plugchat: PlugChat) -> None:
    assert one(plugchat, "receiveMessage/momment_seconds").time == "2026-07-14T16:13:31.000Z"


def test_sent_through_the_api_is_outgoing_from_a_bot(plugchat: PlugChat) -> None:
    event = one(plugchat, "sendingMessage/text_from_api")
    assert event.type == "chat.message.created"
    assert event.data.message is not None and event.data.message.direction == "outgoing"
    assert event.data.actor is not None and event.data.actor.type == "bot"


def test_echo_on_receive_and_sending_urls_is_one_event(plugchat: PlugChat) -> None:
    body = json.dumps(json.loads(open_fixture("sendingMessage/text_from_api"))).encode()
    [a] = normalize("plugchat", body, kind="receiveMessage")
    [b] = normalize("plugchat", body, kind="sendingMessage")
    assert a.id == b.id


def open_fixture(path: str) -> bytes:
    from tests.support import fixture_bytes

    return fixture_bytes(f"plugchat/{path}.json")


def test_delivery_ok_is_sent_status(plugchat: PlugChat) -> None:
    event = one(plugchat, "sendingMessage/delivery_ok")
    assert event.type == "chat.message.status_changed"
    assert event.data.message is not None and event.data.message.status == "sent"


def test_delivery_error_is_failed(plugchat: PlugChat) -> None:
    event = one(plugchat, "messageDeliveryError/delivery_error")
    assert event.type == "chat.message.failed"
    assert event.data.message is not None
    assert event.data.message.status == "failed" and event.data.message.error


def test_a_delivery_error_object_gives_its_code_and_detail(plugchat: PlugChat) -> None:
    event = one(plugchat, "messageDeliveryError/error_object")
    assert event.type == "chat.message.failed"
    message = event.data.message
    assert message is not None and message.error is not None
    assert (message.error.code, message.error.detail) == ("131026", "Message undeliverable")


def test_status_callback_one_event_per_id(plugchat: PlugChat) -> None:
    events = plugchat("messageStatus/read_multiple_ids")
    assert len(events) == 3
    assert len({e.id for e in events}) == 3
    assert {e.type for e in events} == {"chat.message.status_changed"}
    assert {e.data.message.status for e in events if e.data.message} == {"read"}
    assert len({e.partitionkey for e in events}) == 1
    # one event per id, each about its own message, each id what that message's own
    # status callback would give
    ids = ["3EB02F6A1C9B8D7E6F50", "3EB02F6A1C9B8D7E6F51", "3EB0A77F1E2D3C4B5A69"]
    assert [e.data.message.id for e in events if e.data.message] == ids
    body = json.loads((FIXTURES / "plugchat/messageStatus/read_multiple_ids.json").read_text())
    for event, message_id in zip(events, ids, strict=True):
        alone = normalize(
            "plugchat", json.dumps({**body, "ids": [message_id]}).encode(), "messageStatus"
        )
        assert alone == [event]


@pytest.mark.parametrize(
    ("name", "status", "word"),
    [
        ("played", "played", "PLAYED"),
        # 1.1: the business's own device read it, not the customer (1.0 said "read")
        ("read_by_me", None, "READ_BY_ME"),
        ("read_self_legacy", None, "READ-SELF"),
    ],
)
def test_statuses(plugchat: PlugChat, name: str, status: str | None, word: str) -> None:
    [event] = plugchat(f"messageStatus/{name}")
    message = event.data.message
    assert message is not None and (message.status, message.provider_status) == (status, word)


def test_disconnected(plugchat: PlugChat) -> None:
    event = one(plugchat, "whenDisconnecting/disconnected")
    assert event.type == "chat.channel.disconnected"
    assert event.data.channel is not None
    assert event.data.channel.connected is False
    assert event.data.channel.id
    assert event.time == "2026-07-14T18:12:43.000Z"  # seconds, as documented


def test_type_decides_over_the_url_kind() -> None:
    body = b'{"type": "DisconnectedCallback", "instanceId": "i", "momment": 1714651200000}'
    [event] = normalize("plugchat", body, kind="receiveMessage")
    assert event.type == "chat.channel.disconnected"
    body = b'{"type": "receivedcallback", "messageId": "m", "phone": "5544999990001"}'
    [event] = normalize("plugchat", body, kind="whenDisconnecting")
    assert event.type == "chat.message.created"


def test_untyped_bodies_fall_back_to_the_url_kind() -> None:
    [failed] = normalize(
        "plugchat", b'{"messageId": "m", "phone": "5544999990001"}', kind="messageDeliveryError"
    )
    assert failed.type == "chat.message.failed"
    [status] = normalize("plugchat", b'{"ids": ["a"], "status": "READ"}', kind="messageStatus")
    assert status.type == "chat.message.status_changed"
    [gone] = normalize("plugchat", b'{"instanceId": "i"}', kind="whenDisconnecting")
    assert gone.type == "chat.channel.disconnected"
    assert gone.time == RECEIVED_AT


@pytest.mark.parametrize(
    ("kind", "body", "reason"),
    [
        ("receiveMessage", b'{"type": "PresenceChatCallback"}', "unknown_type"),
        ("receiveMessage", b'{"phone": "1"}', "unmappable"),
        ("messageStatus", b'{"type": "MessageStatusCallback", "ids": []}', "unmappable"),
        ("finishAttendance", b'{"attendance": "nope"}', "unmappable"),
        ("finishAttendance", b"[1, 2]", "not_an_object"),
        ("bogus", b"{}", "unknown_kind"),
    ],
)
def test_unmappable(kind: str, body: bytes, reason: str) -> None:
    with pytest.raises(Unmappable) as caught:
        normalize("plugchat", body, kind=kind)
    assert caught.value.reason == reason


def test_wrong_types_do_not_crash() -> None:
    body = {
        "attendance": {
            "attendanceNumber": {"x": 1},
            "customer": "nobody",
            "attendanceCategory": [1, None, "x"],
            "attendanceCategories": {"categoryId": 5},
            "endTime": "soon",
            "status": 7,
        },
        "chat": [None, 3, {"text": "not an object", "momment": "x"}],
    }
    [event] = normalize("plugchat", json.dumps(body).encode(), kind="finishAttendance")
    assert event.data.conversation is not None
    assert event.data.conversation.status == "resolved"
    attendance = event.data.conversation.attendance
    assert attendance is not None
    assert [c.id for c in attendance.categories] == ["5"]
    assert len(attendance.transcript) == 1


def test_a_transcript_is_read_up_to_its_cap_and_the_rest_counted() -> None:
    from relay.providers.plugchat.attendance import MAX_TRANSCRIPT

    chat = {
        f"m{i}": {"messageId": f"m{i}", "momment": 1784045112448 + i, "text": {"message": f"t{i}"}}
        for i in range(MAX_TRANSCRIPT + 7)
    }
    body = json.dumps({"attendance": {"attendanceNumber": 9}, "chat": chat}).encode()
    [event] = normalize("plugchat", body, kind="finishAttendance")
    conversation = event.data.conversation
    assert conversation is not None and conversation.attendance is not None
    transcript = conversation.attendance.transcript
    assert [m.text for m in transcript] == [f"t{i}" for i in range(MAX_TRANSCRIPT)]
    assert event.data.extensions == {"plugchat": {"chat": {"_omitted_keys": 7}}}
    # under the cap nothing is counted
    del chat["m0"]
    chat = dict(list(chat.items())[:MAX_TRANSCRIPT])
    body = json.dumps({"attendance": {"attendanceNumber": 9}, "chat": chat}).encode()
    [event] = normalize("plugchat", body, kind="finishAttendance")
    assert event.data.extensions is None


# Every PlugChat fixture's events, as their wire bytes' SHA-256, kept in a file: any
# change to any output byte (ids, times, envelope, parts, extensions) fails here, however
# the builders are reorganised. After a deliberate change of output, rewrite the file:
#   .venv/bin/python -c "from tests.unit.providers.test_plugchat import write_golden as w; w()"
GOLDEN = Path(__file__).with_name("plugchat") / "events.sha256"


def _golden() -> list[str]:
    lines = []
    for path in sorted((FIXTURES / "plugchat").rglob("*.json")):
        relative = path.relative_to(FIXTURES).as_posix()
        pretty = path.read_bytes()
        compact = json.dumps(json.loads(pretty), separators=(",", ":")).encode()
        for kind in KINDS:
            for spelled, body in (("pretty", pretty), ("compact", compact)):
                inbound = Inbound(
                    source="src",
                    body=body,
                    received_at=RECEIVED_AT,
                    kind=kind,
                    delivery_id="delivery-1",
                )
                try:
                    made = b"\n".join(encode(event) for event in PROVIDER.normalize(inbound))
                except Unmappable as exc:
                    made = f"{exc.reason}: {exc.detail}".encode()
                lines.append(f"{relative} {kind} {spelled} {hashlib.sha256(made).hexdigest()}")
    return lines


def write_golden() -> None:
    GOLDEN.write_text("\n".join(_golden()) + "\n")


def test_every_fixture_gives_the_same_bytes_as_recorded() -> None:
    recorded = GOLDEN.read_text().splitlines()
    made = _golden()
    assert len(made) == len(recorded), "fixtures were added or removed: write_golden()"
    changed = [line for line, was in zip(made, recorded, strict=True) if line != was]
    assert not changed, f"{len(changed)} outputs changed, first: {changed[0]}"
