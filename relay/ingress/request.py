"""A hook request and its answer, apart from the HTTP server that carries them.

:func:`relay.ingress.hooks.answer_hook` takes a :class:`HookRequest` and gives an
:class:`Answer`; aiohttp's handler and the lean server (:mod:`relay.ingress.lean`) build
the one and write the other, so the checks exist once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

import msgspec
from aiohttp import web

from relay.ingress.body import read_buffered, read_limited


class Body(Protocol):
    """A request body as it arrives; a limit breach raises ``BodyTooLarge``, a body that
    cannot be read as sent ``BrokenBody``."""

    def complete(self) -> bool:
        """All of it is in: :meth:`take` gives it without waiting."""
        ...

    def take(self, limit: int) -> bytes: ...

    async def read(self, limit: int) -> bytes:
        """The whole body, however long it takes (the caller bounds the wait)."""
        ...


class HookRequest(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /v1/hooks/{source}[/{kind}]``, as the checks read it."""

    source: str
    kind: str | None
    headers: Mapping[str, str]
    query: Mapping[str, str]
    peer: Callable[[], str | None]
    """The sender's address, asked for only when a source checks it."""
    request_id: str
    body: Body


class Answer:
    """A JSON answer: status, encoded body, the headers beyond the framing ones."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers


class AiohttpBody:
    """An aiohttp request's body."""

    __slots__ = ("_request",)

    def __init__(self, request: web.Request) -> None:
        self._request = request

    def complete(self) -> bool:
        return self._request.content.is_eof()

    def take(self, limit: int) -> bytes:
        return read_buffered(self._request, limit)

    async def read(self, limit: int) -> bytes:
        return await read_limited(self._request, limit)
