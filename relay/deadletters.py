"""Why a record is on the dead-letter topic: the ``relay-reason`` header's whole vocabulary.

The types are the tables: a reason the code writes must be one of these Literals (mypy
refuses any other), and the AsyncAPI document lists exactly these (relay.contracts).
"""

from __future__ import annotations

from typing import Literal, get_args

IngestReason = Literal[
    "malformed_json",
    "not_an_object",
    "missing_event",
    "unknown_event",
    "unknown_kind",
    "unknown_type",
    "unmappable",
    "normalizer_error",
    "too_many_events",
    "event_too_large",
    "unencodable",
]
"""A webhook body that made no canonical event (the raw body is the dead letter)."""

DeliveryFailure = Literal["rejected", "exhausted", "gone", "crashed"]
"""Why a delivery did not happen: ``rejected`` (a 4xx), ``exhausted`` (retries ran out),
``gone`` (410: the subscriber is disabled), ``crashed`` (a bug in the worker)."""

INGEST_REASONS: tuple[str, ...] = get_args(IngestReason)
DELIVERY_REASONS: tuple[str, ...] = tuple(
    f"delivery_{failure}" for failure in get_args(DeliveryFailure) if failure != "gone"
)
"""A delivery dead letter's ``relay-reason``, ``delivery_<failure>``: not ``gone``, whose
event is not dead-lettered but waits for the subscriber to be enabled again."""
