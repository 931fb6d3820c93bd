"""What every provider shares: the :class:`Provider` record, the input a normalizer gets,
the errors it raises and the envelope builder."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from relay.deadletters import IngestReason
from relay.events import (
    DATASCHEMA,
    CloudEvent,
    EventData,
    EventType,
    ProviderName,
    event_id,
)


class Inbound(msgspec.Struct, frozen=True, kw_only=True):
    """One received webhook, as ingress saw it: what the pipeline and a normalizer read."""

    source: str
    body: bytes
    received_at: str
    provider: str = ""
    """The source's provider (``PROVIDERS`` key); a normalizer called directly needs none."""
    kind: str | None = None
    """The URL kind (PlugChat); None for providers that name events in the body."""
    delivery_id: str | None = None
    content_type: str | None = None
    request_id: str = ""
    max_events: int = 1000
    """``limits.max_events_per_body``: a body that would make more is refused unexpanded."""


class MalformedBody(ValueError):
    """The body is not JSON at all: the sender can fix it (answer 400)."""


class Unmappable(ValueError):
    """Valid JSON relay cannot turn into a canonical event (dead-letter it, answer 202)."""

    def __init__(self, reason: IngestReason, detail: str) -> None:
        super().__init__(detail)
        self.reason: IngestReason = reason
        self.detail = detail


class SignatureError(Exception):
    """A provider signature missing or wrong; the message is safe to show the sender."""


Normalizer = Callable[[Inbound], list[CloudEvent]]
Verifier = Callable[[str, bytes, Mapping[str, str], float], None]
"""``verify(secret, raw body, headers, tolerance seconds)``; raises :class:`SignatureError`."""


@dataclass(frozen=True, slots=True)
class Provider:
    """One webhook dialect as a unit: everything ingress, config, cli and the published
    contracts need to know about it, so none of them names a dialect."""

    name: ProviderName
    title: str
    normalize: Normalizer
    kinds: tuple[str, ...] = ()
    """URL kinds (``/v1/hooks/{source}/{kind}``); empty when the body names the event."""
    canonical_kind: Callable[[str], str | None] | None = None
    """A URL kind as sent (any case, kebab or snake) → its canonical spelling, or None."""
    verify: Verifier | None = None
    """Signature verification, for dialects that sign their webhooks."""
    signature_headers: Mapping[str, str] = field(default_factory=dict)
    delivery_header: str | None = None
    """The header carrying the provider's own delivery id, kept as ``providerdelivery``."""
    register_example_url: str = ""
    """For ``relay register``'s help, when relay.register has this dialect's API."""
    register_needs_account: bool = False
    webhook_message: Mapping[str, Any] = field(default_factory=dict)
    """The AsyncAPI message describing this dialect's webhook request."""

    @property
    def takes_kind(self) -> bool:
        return bool(self.kinds)


_json_decoder = msgspec.json.Decoder()


def parse_json(body: bytes) -> Any:
    """Parse a body once with the shared decoder; any failure is :class:`MalformedBody`.

    A lone UTF-16 surrogate escape (``"\\ud83d"``, what JavaScript leaves when it cuts a
    string mid-emoji) is not valid JSON text to msgspec; such bodies are parsed again with
    the lone surrogates replaced by U+FFFD, so the message still means what it said.
    """
    try:
        return _json_decoder.decode(body)
    except (msgspec.DecodeError, RecursionError) as exc:
        if b"surrogate" in str(exc).encode():
            return _without_lone_surrogates(_loads(body, None))
        raise MalformedBody(f"body is not valid JSON: {exc}") from None


def _loads(body: bytes, pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None) -> Any:
    try:
        return json.loads(body, object_pairs_hook=pairs_hook, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise MalformedBody(f"body is not valid JSON: {exc}") from None


# json.loads already joins escaped pairs into one code point: any surrogate left is lone.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _fix_text(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def _without_lone_surrogates(value: Any) -> Any:
    """Replace lone surrogates in every string (keys too) with U+FFFD; linear, iterative."""
    root = [value]
    stack: list[tuple[Any, Any]] = [(root, 0)]
    while stack:
        container, key = stack.pop()
        item = container[key]
        if isinstance(item, str):
            container[key] = _fix_text(item)
        elif isinstance(item, list):
            stack.extend((item, i) for i in range(len(item)))
        elif isinstance(item, dict):
            fixed = {_fix_text(k) if isinstance(k, str) else k: v for k, v in item.items()}
            container[key] = fixed
            stack.extend((fixed, k) for k in fixed)
    return root[0]


_MAX_COPIES = 100
"""Earlier values kept per duplicated key; past it the last value still wins."""


def _keep_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON object hook: the last value wins, earlier duplicates are kept under ``key#n``."""
    result = dict(pairs)  # C speed for the common object, which has no duplicates
    if len(result) == len(pairs):
        return result
    result = {}
    copies: dict[str, int] = {}
    for key, value in pairs:
        if key in result and copies.get(key, 1) <= _MAX_COPIES:
            # the next free suffix per key, remembered: many copies of one key stay linear
            n = copies.get(key, 1) + 1
            while f"{key}#{n}" in result:
                n += 1
            copies[key] = n
            result[f"{key}#{n}"] = result[key]
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json_keeping_duplicates(body: bytes) -> Any:
    """Parse a body where duplicate keys carry data (PlugChat transcripts keyed by message id).

    Slower than :func:`parse_json`; used only for the rare payloads that need it. Lone
    surrogates are replaced with U+FFFD here too.
    """
    parsed = _loads(body, _keep_duplicate_keys)
    if b"\\ud" in body.lower():  # a surrogate escape, paired or not
        parsed = _without_lone_surrogates(parsed)
    return parsed


def body_digest(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def require_object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise Unmappable("not_an_object", f"expected a JSON object, got {_json_kind(payload)}")
    return payload


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null"


def build_event(
    inbound: Inbound,
    *,
    type_: EventType,
    identity: str,
    time: str | None,
    partition: str | None,
    subject: str | None,
    data: EventData,
) -> CloudEvent:
    """Wrap normalized data in the envelope with a deterministic id and partition key."""
    source = inbound.source
    return CloudEvent(
        specversion="1.0",
        id=event_id(source, type_, identity),
        source=_SOURCES.get(source) or _relay_source(source),
        type=type_,
        subject=subject,
        time=time or inbound.received_at,
        datacontenttype="application/json",
        dataschema=DATASCHEMA,
        partitionkey=f"{source}:{partition}" if partition else source,
        providerdelivery=inbound.delivery_id,
        data=data,
    )


_SOURCES: dict[str, str] = {}
"""A source's name → its CloudEvents ``source`` (``relay/<name>``): a few sources send every
event (bounded)."""


def _relay_source(source: str) -> str:
    if len(_SOURCES) >= 1024:
        _SOURCES.clear()
    found = _SOURCES[source] = f"relay/{source}"
    return found
