"""A Chatwoot message → the canonical :class:`Message`: direction, sender, per-item media,
locations and shared contacts from attachments, template params, errors (the bot and
interactive content types are :mod:`relay.providers.chatwoot.interactive`'s)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from relay.events import (
    Actor,
    Direction,
    Location,
    Media,
    Message,
    MessageStatus,
    SharedContact,
    Template,
)
from relay.providers.chatwoot import shapes
from relay.providers.chatwoot.interactive import ATTRIBUTE_KEYS, READERS, said
from relay.providers.chatwoot.parts import actor, dict_or_none, text_of
from relay.providers.coerce import (
    as_bool,
    as_e164,
    as_float,
    as_int,
    as_str,
    get,
    get_obj,
    get_str,
)
from relay.providers.fast import clean, passthrough, read, time_of

_EMPTY: dict[str, Any] = {}

_MESSAGE_STATUSES: dict[str, MessageStatus] = {
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "failed": "failed",
}
# message_type arrives as Chatwoot's enum string or its integer value.
_MESSAGE_TYPES = {0: "incoming", 1: "outgoing", 2: "activity", 3: "template"}
_TYPE_WORDS = frozenset(_MESSAGE_TYPES.values())
_ATTACHMENT_KINDS = {"file": "document", "fallback": "link"}
_CONTENT_KINDS = {
    "input_csat": "csat",
    "input_select": "select",
    "cards": "cards",
    "form": "form",
}
MAX_ATTACHMENTS = 100
MESSAGE_SEEN = frozenset(shapes.MessageBody.__struct_fields__)
"""For clean(): a message object's keys as Chatwoot sends them (one home: the typed
path's Struct)."""
MESSAGE_KEYS = MESSAGE_SEEN - {"source_id"}
"""What the canonical message reads of them (``source_id`` is the pass-through's)."""


def message_type(value: Any) -> str | None:
    if type(value) is str and value in _TYPE_WORDS:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return _MESSAGE_TYPES.get(value)
    text = as_str(value)
    if text is None:
        return None
    text = text.strip().lower()
    if text.isascii() and text.isdigit():
        return _MESSAGE_TYPES.get(int(text))
    return text


def _media_item(item: Mapping[str, Any], kind: str) -> Media:
    return Media(
        kind=kind,
        url=get_str(item, "data_url", "external_url"),
        mime_type=get_str(item, "content_type", "mime_type"),
        file_name=get_str(item, "file_name", "name"),
        caption=get_str(item, "fallback_title") if kind == "link" else None,
        size=as_int(get(item, "file_size")),
        thumbnail_url=get_str(item, "thumb_url"),
        width=as_int(get(item, "width")),
        height=as_int(get(item, "height")),
        transcript=get_str(item, "transcribed_text"),
    )


class _Attachments:
    """Attachments split by meaning: media items, a location, shared contacts."""

    __slots__ = ("_cards", "kind", "location", "media")

    def __init__(self, items: list[Any]) -> None:
        self.media: list[Media] = []
        self.location: Location | None = None
        # (name, phones, emails) per shared card, built once at the end
        self._cards: list[tuple[str | None, list[str], list[str]]] = []
        self.kind: str | None = None
        for item in items:
            if not isinstance(item, Mapping):
                continue
            file_type = get_str(item, "file_type")
            kind = _ATTACHMENT_KINDS.get(file_type, file_type) if file_type else None
            if self.kind is None and kind:
                self.kind = kind
            if kind == "location":
                self.location = self.location or Location(
                    latitude=as_float(get(item, "coordinates_lat")),
                    longitude=as_float(get(item, "coordinates_long")),
                    name=get_str(item, "fallback_title"),
                    url=get_str(item, "data_url", "external_url"),
                )
            elif kind == "contact":
                self._add_contact(item)
            else:
                self.media.append(_media_item(item, kind or "document"))

    def _add_contact(self, item: Mapping[str, Any]) -> None:
        # Chatwoot stores one attachment per phone of a shared card, each with its meta.
        meta = get_obj(item, "meta")
        first_name = get_str(meta, "first_name", "firstName")
        last_name = get_str(meta, "last_name", "lastName")
        name = get_str(meta, "formatted_name", "formattedName") or (
            " ".join(part for part in (first_name, last_name) if part) or None
        )
        phone_raw = get_str(item, "fallback_title")
        email = get_str(meta, "email")
        if not self._cards or self._cards[-1][0] != name:
            self._cards.append((name, [], []))
        _, phones, emails = self._cards[-1]
        if phone_raw:
            phones.append(as_e164(phone_raw) or phone_raw)
        if email and email not in emails[-1:]:
            emails.append(email)

    @property
    def contacts(self) -> list[SharedContact]:
        return [
            SharedContact(name=name, phones=phones, emails=emails)
            for name, phones, emails in self._cards
        ]


def _template(additional: Mapping[str, Any], text: str | None) -> Template | None:
    params = get_obj(additional, "template_params")
    if not params:
        return None
    processed = get(params, "processed_params")
    header = get_obj(processed, "header")
    header_url = get_str(header, "media_url")
    return Template(
        name=get_str(params, "name"),
        language=get_str(params, "language"),
        category=get_str(params, "category"),
        text=text,
        header=Media(kind=get_str(header, "media_type"), url=header_url) if header_url else None,
        params=dict_or_none(processed),
    )


def _kind(attachment_kind: str | None, type_: str | None, content_type: str | None) -> str:
    if attachment_kind:
        return attachment_kind
    if content_type in _CONTENT_KINDS:
        return _CONTENT_KINDS[content_type]
    if type_ in ("activity", "template"):
        return type_
    if content_type and content_type != "text":
        return content_type
    return "text"


def message(value: dict[str, Any], conversation_contact: Any, status_raw: str | None) -> Message:
    """A Chatwoot message object as the canonical message (``status_raw``: its status, or
    the conversation copy's when the message has none)."""
    return message_of(
        value if value.keys() <= MESSAGE_SEEN else clean(value, MESSAGE_SEEN),
        conversation_contact,
        status_raw,
    )


def message_of(
    obj: Mapping[str, Any], conversation_contact: Any, status_raw: str | None
) -> Message:
    """:func:`message` of the object cleaned."""
    return message_from(
        obj.get("id"),
        obj.get("message_type"),
        obj.get("content_type"),
        obj.get("content"),
        obj.get("processed_message_content"),
        obj.get("content_attributes"),
        obj.get("additional_attributes"),
        obj.get("attachments"),
        obj.get("sender"),
        obj.get("private"),
        obj.get("created_at"),
        conversation_contact,
        status_raw,
    )


def message_from(
    id_: Any,
    message_type_: Any,
    content_type_: Any,
    content: Any,
    processed: Any,
    attributes: Any,
    additional: Any,
    items: Any,
    sender_obj: Any,
    private: Any,
    created_at: Any,
    conversation_contact: Any,
    status_raw: str | None,
    actor_of: Callable[..., Actor | None] = actor,
) -> Message:
    """The canonical message of a Chatwoot message's values, as decoded (the dict reader's
    and the typed reader's one home for what they mean; ``actor_of`` reads the sender and
    the conversation's contact, as each reader holds them)."""
    v = message_type_
    type_ = v if type(v) is str and v in _TYPE_WORDS else message_type(v)
    direction = _DIRECTIONS.get(type_) if type_ else None
    content_attributes = dict_or_none(attributes) if attributes else None
    attrs: Mapping[str, Any] = content_attributes or _EMPTY
    sender = actor_of(sender_obj, "contact" if direction == "incoming" else "user")
    if sender is None:
        if type_ == "activity":
            sender = Actor(type="system")
        elif direction == "outgoing":
            # Sent from the WhatsApp Business app (or Instagram) outside Chatwoot: a person.
            echo = as_bool(get(attrs, "external_echo"))
            sender = Actor(type="agent" if echo else "bot")
        elif direction == "incoming":
            sender = actor_of(conversation_contact)
    # Chatwoot allows 15 attachments a message (Message::NUMBER_OF_PERMITTED_ATTACHMENTS);
    # more is not a real message, and reading them all would only let one body cost more.
    if items and type(items) is list:
        attachments = _Attachments(items[:MAX_ATTACHMENTS])
        media, location, contacts = attachments.media, attachments.location, attachments.contacts
        attachment_kind = attachments.kind
    else:
        media, location, contacts, attachment_kind = [], None, [], None
    v = content_type_
    content_type = v if type(v) is str and v and not v.isspace() else text_of(v)
    kind = (
        "text"
        if content_type == "text" and not attachment_kind and type_ not in _OWN_KINDS
        else _kind(attachment_kind, type_, content_type)
    )
    v = content
    body = (v if type(v) is str and v and not v.isspace() else text_of(v)) or text_of(processed)
    found = said(attrs, content_type) if attrs or content_type in READERS else _EMPTY
    template = _template(additional, body) if type(additional) is dict and additional else None
    if template is not None and kind == "text":
        kind = "template"
    message = Message(
        id=str(id_) if type(id_) is int else text_of(id_),
        direction=direction,
        kind=kind,
        text=body,
        private=private if type(private) is bool else as_bool(private) or False,
        status=_MESSAGE_STATUSES.get(status_raw.lower()) if status_raw else None,
        provider_status=status_raw,
        created_at=time_of(created_at),
        sender=sender,
        media=media,
        attributes=content_attributes,
    )
    if not (location or contacts or template or found):
        return message
    # a call of more than 15 keywords costs several times one of 15: the rest apart
    return msgspec.structs.replace(
        message,
        location=location,
        shared_contact=contacts[0] if contacts else None,
        shared_contacts=contacts,
        template=template,
        **found,
    )


_DIRECTIONS: dict[str, Direction] = {
    "incoming": "incoming",
    "outgoing": "outgoing",
    "template": "outgoing",
}
_OWN_KINDS = frozenset({"activity", "template"})
"""Message types that are their own kind (when no attachment or content type says one)."""


def is_deleted(view: Mapping[str, Any]) -> bool:
    """Chatwoot marks a deleted message ``content_attributes.deleted`` (status ``deleted``);
    ``view``: the message cleaned."""
    return is_deleted_of(view.get("content_attributes"), view.get("status"))


def is_deleted_of(attributes: Any, status: Any) -> bool:
    """:func:`is_deleted` of a message's ``content_attributes`` and ``status`` as decoded."""
    if as_bool(clean(attributes, ATTRIBUTE_KEYS).get("deleted")):
        return True
    return (text_of(status) or "").lower() == "deleted"


def is_submission(view: Mapping[str, Any]) -> bool:
    """The contact has answered this message's survey, select or form (``view``: the
    message cleaned)."""
    return is_submission_of(view.get("content_attributes"))


def is_submission_of(attributes: Any) -> bool:
    """:func:`is_submission` of a message's ``content_attributes`` as decoded."""
    submitted = clean(attributes, ATTRIBUTE_KEYS).get("submitted_values")
    return bool(submitted) and isinstance(submitted, Mapping | list)


def message_extension(obj: dict[str, Any]) -> dict[str, Any] | None:
    return message_rest(*read(obj, MESSAGE_KEYS))


def message_rest(view: Mapping[str, Any], found: dict[str, Any] | None) -> dict[str, Any] | None:
    """The message's extension: ``found``, its pass-through (:func:`read`), with what its
    ``additional_attributes`` (of ``view``, the object cleaned) hold besides the template."""
    return with_additional(found, view.get("additional_attributes"))


def with_additional(found: dict[str, Any] | None, additional: Any) -> dict[str, Any] | None:
    """A message's pass-through ``found`` with what its ``additional_attributes`` as decoded
    hold besides the template added."""
    rest = passthrough(additional, _TEMPLATE_KEY) if additional else None
    if rest:
        if found is None:
            return {"additional_attributes": rest}
        found["additional_attributes"] = rest  # a fresh dict, of keys other than this one
    return found


_TEMPLATE_KEY = frozenset({"template_params"})
