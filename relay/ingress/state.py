"""Typed application state shared by the ingress handlers."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from relay.config import Config
from relay.ingest import Ingest
from relay.ingress.auth import SourceAuth


@dataclass(frozen=True, slots=True)
class SourceEntry:
    provider: str
    auth: SourceAuth


@dataclass(slots=True)
class IngressState:
    ingest: Ingest
    sources: dict[str, SourceEntry]
    max_body_bytes: int
    accepting: bool = field(default=True)

    @classmethod
    def build(cls, config: Config, ingest: Ingest) -> IngressState:
        return cls(
            ingest=ingest,
            sources={
                name: SourceEntry(source.provider, SourceAuth(source))
                for name, source in config.sources.items()
            },
            max_body_bytes=config.limits.max_body_bytes,
        )


INGRESS = web.AppKey("ingress", IngressState)
REQUEST_ID = web.RequestKey("request_id", str)
