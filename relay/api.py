"""relay's public Python API: normalize a webhook body offline, decode a canonical event.

    >>> import relay
    >>> [event] = relay.normalize("chatwoot", body)
    >>> event.data.message.location.latitude
    >>> relay.decode_event(record.value, dict(record.headers))

Both return :class:`relay.events.CloudEvent` values with typed ``data``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from relay.cloudevents import HeadersLike, from_record
from relay.events import CloudEvent
from relay.providers import PROVIDERS, Inbound, MalformedBody, Unmappable
from relay.values import format_time

__all__ = ["CloudEvent", "MalformedBody", "Unmappable", "decode_event", "normalize"]


def _now() -> str:
    return format_time(datetime.now(UTC))


def normalize(
    provider: str,
    body: bytes,
    *,
    kind: str | None = None,
    source: str | None = None,
    received_at: str | None = None,
    delivery_id: str | None = None,
    max_events: int = 1000,
) -> list[CloudEvent]:
    """The canonical events of one webhook body, exactly as ``relay serve`` would make them.

    ``provider`` is ``chatwoot`` or ``plugchat``; ``kind`` the URL kind for providers that
    need one (PlugChat); ``source`` names the sender (default: the provider's name).
    Raises :class:`MalformedBody` when the body is not JSON, :class:`Unmappable` (with a
    ``reason``) when it is JSON relay cannot map, ``KeyError`` for an unknown provider.
    """
    unit = PROVIDERS.get(provider)
    if unit is None:
        raise KeyError(f"unknown provider {provider!r}; known: {', '.join(sorted(PROVIDERS))}")
    inbound = Inbound(
        source=source or provider,
        body=body,
        received_at=received_at or _now(),
        kind=kind,
        delivery_id=delivery_id,
        max_events=max_events,
    )
    return unit.normalize(inbound)


def decode_event(value: bytes, headers: HeadersLike | None = None) -> CloudEvent:
    """A canonical event from a Kafka record (or an HTTP delivery): structured mode (the
    whole CloudEvent as JSON) or binary mode (``data`` as the value, attributes in
    ``ce_*`` headers, as aiokafka gives them: a list of ``(name, bytes)``).

    Raises ``msgspec.DecodeError``/``msgspec.ValidationError`` for anything else.
    """
    return from_record(value, headers)
