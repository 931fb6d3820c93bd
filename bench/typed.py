"""The C-decoded Struct lever of issue 16 point 6, measured against its lower bounds.

    .venv/bin/python -m bench.typed        # one run, two Markdown tables on stdout

Issue 16 asks the Chatwoot normalizer to decode the known shapes straight into msgspec
Structs; relay does so since the 2026-12-03 third session (relay/providers/chatwoot/typed.py,
the dict path its fallback). This measures, in one process and one run, relay's normalizer
against what that lever could give at best:

1. ``msgspec.json.decode`` into dicts (what the normalizer does, and the bench's
   denominator) against a decode into Structs of the keys Chatwoot sends
   (``forbid_unknown_fields``: a padded or unknown key would send a body to the dict
   path), for each Chatwoot message family; "refused" names what would fall back.
2. On the load bench's body, relay's normalizer against a straight-line reader of the
   Structs that builds the same event (asserted byte for byte before timing): once with
   the pass-through in relay's table order, once in the body's order (each pass-through
   key a ``dec_hook`` type stamped with a counter, the only way found to learn from
   msgspec in which order an object's keys came). The reader knows only this body's
   shape (text message, no attachments, no template): a lower bound, not a normalizer.

Bounded: ~0.4 s a row, a few seconds in all; nothing written, no network.
"""

from __future__ import annotations

import itertools
from typing import Any

import msgspec
from msgspec import Raw

from bench.normalize import FIXTURES, compact, per_call
from bench.typed_readers import (
    CONVERSATION_PASS,
    PERSON_PASS,
    Stamped,
    straight_line,
    straight_line_dicts,
)
from relay.providers import NORMALIZERS, Inbound
from relay.providers.chatwoot.content import MESSAGE_SEEN
from relay.providers.chatwoot.parts import CONVERSATION_SEEN, META_KEYS, PERSON_SEEN, SMALL_KEYS

Id = int | str | None


_next = itertools.count().__next__


def _stamp(type_: type, value: Any) -> Any:
    return Stamped((_next(), value))


def _keys(first: str, seen: frozenset[str]) -> list[str]:
    """``first`` (the bench body's keys, in its order), then the rest of ``seen`` (the
    keys relay's readers take as Chatwoot's: any other key would go to the dict path)."""
    ordered = first.split()
    return ordered + sorted(seen - set(ordered))


SMALL = _keys("id name channel_type", SMALL_KEYS)
PERSON = _keys(
    "additional_attributes custom_attributes email id identifier name phone_number thumbnail "
    "blocked type",
    PERSON_SEEN,
)
COPY_READ = {"id": Id, "updated_at": Any, "status": Any}
"""What the normalizer reads of ``conversation.messages[]``; its other keys are skipped."""
COPY_KEYS = _keys(
    "id content account_id inbox_id conversation_id message_type created_at updated_at private "
    "status source_id content_type content_attributes sender_type sender_id external_source_ids "
    "additional_attributes processed_message_content sentiment conversation sender",
    MESSAGE_SEEN | {"sentiment", "external_source_ids"},
)
CONVERSATION_KEYS = _keys(
    "additional_attributes can_reply channel contact_inbox id inbox_id messages labels meta "
    "status custom_attributes snoozed_until unread_count first_reply_created_at priority "
    "waiting_since agent_last_seen_at contact_last_seen_at last_activity_at timestamp "
    "created_at updated_at",
    CONVERSATION_SEEN,
)
BODY_KEYS = _keys(
    "account additional_attributes content_attributes content_type content conversation "
    "created_at id inbox message_type private sender source_id event",
    MESSAGE_SEEN,
)
META = _keys("sender assignee", META_KEYS)


def _struct(name: str, fields: list[tuple[str, Any]]) -> Any:
    return msgspec.defstruct(
        name, [(key, kind, None) for key, kind in fields], forbid_unknown_fields=True
    )


def _types(stamped: bool) -> Any:
    """The Body Struct; ``stamped``: the pass-through keys stamped in the body's order."""
    extra = Stamped if stamped else Any
    small = _struct("Small", [(key, Id if key == "id" else Any) for key in SMALL])
    person_types = [(key, Id if key == "id" else Any) for key in PERSON]
    person = _struct("Person", person_types)
    contact = _struct(
        "MetaSender", [(k, extra if k in PERSON_PASS else t) for k, t in person_types]
    )
    copy = _struct("Copy", [(key, COPY_READ.get(key, Raw)) for key in COPY_KEYS])
    meta = _struct(
        "Meta",
        [("sender", contact | None), ("assignee", person | None)]
        + [(key, Any) for key in META[2:]],
    )
    typed: dict[str, Any] = {"id": Id, "inbox_id": Id, "messages": list[copy] | None}
    typed["meta"] = meta | None
    conversation = _struct(
        "Conversation",
        [(k, extra if k in CONVERSATION_PASS else typed.get(k, Any)) for k in CONVERSATION_KEYS],
    )
    body_types = {"account": small | None, "inbox": small | None, "id": Id}
    body_types |= {"conversation": conversation | None, "sender": person | None}
    body_types["contact"] = person | None
    return _struct("Body", [(key, body_types.get(key, Any)) for key in BODY_KEYS])


_plain = msgspec.json.Decoder().decode
TABLE_ORDER = msgspec.json.Decoder(_types(stamped=False)).decode
BODY_ORDER = msgspec.json.Decoder(_types(stamped=True), dec_hook=_stamp).decode


MESSAGE_FAMILIES = [
    ("message_created (the load bench's body)", "chatwoot/message_created.json"),
    ("message_created, image", "chatwoot/message_created_attachment.json"),
    ("message_created, template", "chatwoot/message_created_template_params.json"),
    ("message_updated, CSAT", "chatwoot/message_updated_csat_submitted.json"),
    ("message_created, white-label keys", "chatwoot/whitelabel_extra_keys.json"),
]


def decodes() -> None:
    print("| Chatwoot family | dict decode µs | Struct decode µs | Struct / dict |")
    print("|---|---:|---:|---:|")
    for name, path in MESSAGE_FAMILIES:
        if not (FIXTURES / path).exists():
            continue
        body = compact(path)
        try:
            TABLE_ORDER(body)
        except msgspec.ValidationError as exc:
            print(f"| {name} | - | refused: {exc} | - |")
            continue
        dict_s, struct_s = per_call(lambda b=body: _plain(b), lambda b=body: TABLE_ORDER(b))
        print(f"| {name} | {dict_s * 1e6:.1f} | {struct_s * 1e6:.1f} | {struct_s / dict_s:.2f} |")
    print(flush=True)


def readers() -> None:
    body = compact("chatwoot/message_created.json")
    inbound = Inbound(source="bench", body=body, received_at="2026-01-01T00:00:00.000Z")
    relay_normalize = NORMALIZERS["chatwoot"]
    table, stamped = straight_line(TABLE_ORDER), straight_line(BODY_ORDER)
    expected = msgspec.json.encode(relay_normalize(inbound))
    for reader in (straight_line_dicts, table, stamped):
        assert msgspec.json.encode(reader(inbound)) == expected, "not the normalizer's bytes"
    runs = per_call(
        lambda: _plain(body),
        lambda: relay_normalize(inbound),
        lambda: straight_line_dicts(inbound),
        lambda: table(inbound),
        lambda: stamped(inbound),
    )
    decode_s = runs[0]
    print("| the load bench's body | µs | ratio to the dict decode |")
    print("|---|---:|---:|")
    names = (
        "msgspec.json.decode (dict)",
        "relay's normalizer",
        "dicts, straight-line (body order)",
        "Structs, straight-line, pass-through in table order",
        "Structs, straight-line, pass-through in body order (stamped)",
    )
    for name, seconds in zip(names, runs, strict=True):
        print(f"| {name} | {seconds * 1e6:.1f} | {seconds / decode_s:.2f}x |")
    print(flush=True)


if __name__ == "__main__":
    decodes()
    readers()
