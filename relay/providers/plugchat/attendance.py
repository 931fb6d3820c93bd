"""PlugChat attendances (start/finish) → ``chat.conversation.status_changed``, with the
categories, rating, operator report and the transcript of a finished one."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import islice
from typing import Any

from relay.events import (
    Actor,
    Attendance,
    Category,
    CloudEvent,
    Contact,
    Conversation,
    ConversationStatus,
    EventData,
    Message,
)
from relay.providers.base import Inbound, Unmappable, body_digest
from relay.providers.coerce import as_float
from relay.providers.extensions import OMITTED_KEYS
from relay.providers.fast import clean
from relay.providers.plugchat import zapi
from relay.providers.plugchat.message import (
    chat_address,
    contact,
    flags,
    message,
    sender,
    view_of,
)
from relay.providers.plugchat.reading import moment, text

_STATUSES: dict[str, ConversationStatus] = {
    "PROGRESS": "open",
    "IN_PROGRESS": "open",
    "OPEN": "open",
    "WAITING": "pending",
    "PENDING": "pending",
    "FINISH": "resolved",
    "FINISHED": "resolved",
    "CLOSED": "resolved",
}


MAX_CATEGORIES = 256
"""More categories on one attendance is not a real attendance; the raw copy keeps them."""


def lost_transcript_entries(payload: dict[str, Any], body: bytes) -> bool:
    """Did the plain decode drop transcript entries that shared a key (seed bodies repeat
    ``"ID_DA_MENSAGEM"``)? Then the body is parsed again keeping duplicates.

    Every transcript entry carries ``messageId`` or ``momment``: if the body holds more of
    either than the decoded entries and the attendance carry, some entries were merged (or
    those keys are nested deeper, e.g. in a quoted message: re-parsing is then merely
    slower, never wrong).
    """
    view = view_of(payload)
    chat = view.get("chat")
    if type(chat) is not dict:
        return False
    for key in ("messageId", "momment"):
        mentions = body.count(f'"{key}"'.encode())
        if mentions <= len(chat):
            continue  # cannot be more entries than were decoded
        attendance = view.get("attendance")
        carried = (key in payload) + (type(attendance) is dict and key in attendance)
        carried += sum(1 for entry in chat.values() if isinstance(entry, dict) and key in entry)
        if mentions > carried:
            return True
    return False


_CATEGORY_KEYS = frozenset(
    {"categoryId", "id", "categoryName", "name", "color", "itemId", "itemName"}
)


def categories(attendance: Mapping[str, Any]) -> list[Category]:
    """Both formats: ``attendanceCategory`` (one object) and ``attendanceCategories`` (a list).

    Linear in the number of categories: seen (id, name, item) keys are kept in sets.
    """
    found: list[Category] = []
    seen: set[tuple[str | None, str | None, str | None]] = set()
    seen_any_item: set[tuple[str | None, str | None]] = set()
    for key in ("attendanceCategories", "attendanceCategory"):
        value = attendance.get(key)
        items = value[:MAX_CATEGORIES] if type(value) is list else [value]
        for item in items:
            if type(item) is not dict or not item:
                continue
            view = clean(item, _CATEGORY_KEYS)
            category = Category(
                id=text(view, "categoryId", "id"),
                name=text(view, "categoryName", "name"),
                color=text(view, "color"),
                item_id=text(view, "itemId"),
                item_name=text(view, "itemName"),
            )
            head = (category.id, category.name)
            # the single legacy category repeats one of the list's, without its item
            if category.item_id is None and head in seen_any_item:
                continue
            full = (*head, category.item_id)
            if full in seen:
                continue
            seen.add(full)
            seen_any_item.add(head)
            found.append(category)
    return found


MAX_TRANSCRIPT = 300
"""Transcript entries read (the first ones, in the body's order); the rest are counted in
``extensions.plugchat.chat._omitted_keys`` and kept only on ``relay.raw``. Reading a
1 MiB transcript (~11k short messages) would block the event loop for about a second."""


def transcript(chat: Any) -> tuple[list[Message], int]:
    """The attendance's ``chat``: an object of message id → Z-API message (or a list),
    and how many entries past :data:`MAX_TRANSCRIPT` were not read."""
    if type(chat) is dict:
        items = list(islice(chat.values(), MAX_TRANSCRIPT))
        total = len(chat)
    elif type(chat) is list:
        items, total = chat[:MAX_TRANSCRIPT], len(chat)
    else:
        items, total = [], 0
    messages: list[tuple[float, int, Message]] = []
    for position, item in enumerate(items):
        if type(item) is not dict:
            continue
        view = view_of(item)
        from_me, group = flags(view)
        _, customer = contact(view, from_me, group)
        by = sender(view, customer, from_me, group)
        built, _ = message(item, view, by=by, from_me=from_me, with_extension=False)
        when = as_float(view.get("momment"))
        messages.append((when if when is not None else float("inf"), position, built))
    messages.sort(key=lambda entry: (entry[0], entry[1]))
    return [built for _, _, built in messages], total - len(items)


_ATTENDANCE_KEYS = frozenset(
    {
        "customer",
        "attendanceNumber",
        "number",
        "id",
        "status",
        "departament",
        "operator",
        "finishBy",
        "operatorReport",
        "operatorReport ",  # so documented (below)
        "ratingObservation",
        "attendanceCategory",
        "attendanceCategories",
        "requestTime",
        "startTime",
        "endTime",
        "momment",
    }
)
_CUSTOMER_KEYS = frozenset({"name", "phone"})


def attendance_event(inbound: Inbound, payload: Mapping[str, Any], kind: str) -> list[CloudEvent]:
    """``payload``: the body cleaned."""
    attendance_obj = clean(payload.get("attendance"), _ATTENDANCE_KEYS)
    if not attendance_obj:
        raise Unmappable("unmappable", f"{kind} body has no `attendance` object")
    get = attendance_obj.get
    customer = clean(get("customer"), _CUSTOMER_KEYS)
    messages, omitted = transcript(payload.get("chat"))
    phone_raw, phone, chat_id = chat_address(customer.get("phone"))
    number = text(attendance_obj, "attendanceNumber", "number", "id")
    status_raw = text(attendance_obj, "status")
    status = _STATUSES.get(status_raw.strip().upper()) if status_raw else None
    if status is None:
        status = "resolved" if kind == "finishAttendance" else "open"
    operator = text(attendance_obj, "operator", "operatorName")
    finished_by = text(attendance_obj, "finishBy", "finishedBy")
    attendance = Attendance(
        number=number,
        department=text(attendance_obj, "departament", "department"),
        operator=operator,
        finished_by=finished_by,
        # PlugChat's documented spelling has a trailing space: read as sent, the fast
        # path reads it too
        operator_report=text(attendance_obj, "operatorReport", "operatorReport "),
        rating_note=text(attendance_obj, "ratingObservation"),
        categories=categories(attendance_obj),
        requested_at=moment(get("requestTime")),
        started_at=moment(get("startTime")),
        ended_at=moment(get("endTime")),
        transcript=messages,
    )
    # The customer's chat keys the partition so attendance events stay in order with
    # that chat's messages; the attendance number is the fallback.
    chat = phone_raw or (f"attendance/{number}" if number else None)
    actor_name = finished_by if kind == "finishAttendance" else operator
    data = EventData(
        provider="plugchat",
        source=inbound.source,
        provider_event=kind,
        conversation=Conversation(
            id=phone_raw,
            status=status,
            provider_status=status_raw,
            channel="whatsapp",
            team=attendance.department,
            attendance=attendance,
        ),
        contact=Contact(id=phone_raw, name=text(customer, "name"), phone=phone, chat_id=chat_id),
        actor=Actor(type="agent", name=actor_name) if actor_name else None,
        extensions={"plugchat": {"chat": {OMITTED_KEYS: omitted}}} if omitted else None,
    )
    time = (attendance.ended_at if kind == "finishAttendance" else attendance.started_at) or moment(
        get("momment")
    )
    identity = f"attendance:{number}:{kind}" if number else body_digest(inbound.body)
    subject = f"attendance/{number}" if number else None
    return [
        zapi.event(inbound, "chat.conversation.status_changed", identity, time, data, chat, subject)
    ]
