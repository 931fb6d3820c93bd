"""The fast path for PlugChat: one msgspec decode, the body's objects checked once each
for keys with stray whitespace as the builders reach them, and plain ``dict.get`` reads
(:func:`relay.providers.reads.plain_reads`), through the same builders as the tolerant
path. Whatever the plain reads do not model (a padded key, more unknown keys than the
extension bound, a transcript whose duplicate keys need the slow parse, a body msgspec
refuses) raises :class:`~relay.providers.fast.Fallback` and the tolerant path
(:func:`relay.providers.plugchat.normalize_tolerant`) reads the body.
"""

from __future__ import annotations

import msgspec

from relay.events import CloudEvent
from relay.providers.base import Inbound
from relay.providers.fast import Fallback, plain
from relay.providers.plugchat import builders, commerce, interactive, message
from relay.providers.plugchat import content as contents
from relay.providers.plugchat.attendance import lost_transcript_entries
from relay.providers.plugchat.reading import MEDIA_KEYS
from relay.providers.reads import plain_reads

_decode = msgspec.json.Decoder().decode

# The keys PlugChat sends (an object holding only these needs one subset test; other keys
# are checked one by one).
KNOWN_KEYS = (
    message.MESSAGE_KEYS
    | message.PASSTHROUGH_ATTRIBUTES
    | contents.CONTENT_KEYS
    | MEDIA_KEYS
    | commerce.KEYS
    | interactive.KEYS
    | {
        "ids",
        "senderLid",
        "chatLid",
        "isNewsletter",
        "phoneDevice",
        "messageExpirationSeconds",
        "forwarded",
        "fromApi",
        "broadcast",
        "participantPhone",
        "participantLid",
        # attendances
        "attendance",
        "chat",
        "customer",
        "name",
        "attendanceNumber",
        "departament",
        "operator",
        "finishBy",
        "operatorReport",
        "operatorReport ",  # so documented (attendance.py)
        "ratingObservation",
        "attendanceCategory",
        "attendanceCategories",
        "categoryId",
        "categoryName",
        "color",
        "itemId",
        "itemName",
        "requestTime",
        "startTime",
        "endTime",
        # delivery and disconnection
        "zaapId",
        "error",
        "errorCode",
        "connected",
        "disconnected",
        # in content objects (read, or kept in extensions)
        "latitude",
        "longitude",
        "address",
        "displayName",
        "phones",
        "vCard",
        "reactionBy",
        "referencedMessage",
        "participant",
        "time",
        "callId",
        "body",
        "sourceUrl",
        "sourceId",
        "sourceType",
        "mediaType",
        "ctwaClid",
        "showAdAttribution",
        "renderLargerThumbnail",
        "containsAutoReply",
        "downloadError",
        "pageCount",
        "token",
    }
)
PLAIN = plain_reads(KNOWN_KEYS)


def normalize_fast(inbound: Inbound, kind: str | None = None) -> list[CloudEvent]:
    """The fast path for a body on the URL ``kind`` (canonical spelling; default the
    inbound's): the same events as the tolerant path, or :class:`Fallback` (carrying the
    decoded body once decoded)."""
    kind = inbound.kind if kind is None else kind
    if kind not in _KINDS:
        raise Fallback
    payload = _decode(inbound.body)
    try:
        if type(payload) is not dict:
            raise Fallback
        plain(payload, KNOWN_KEYS)
        if kind in builders.ATTENDANCE_KINDS and lost_transcript_entries(
            payload, inbound.body, PLAIN
        ):
            raise Fallback
        return builders.build(inbound, payload, kind, PLAIN)
    except Fallback:
        raise Fallback(payload) from None


_KINDS = frozenset(builders.BY_KIND) | builders.ATTENDANCE_KINDS
