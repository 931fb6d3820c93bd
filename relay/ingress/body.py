"""Reading a request body within bounds, and checking that it claims to be JSON."""

from __future__ import annotations

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError


class BodyTooLarge(Exception):
    pass


class BrokenBody(Exception):
    """The body could not be read as sent (a truncated or undecodable gzip stream, say)."""


def is_json_content_type(header: str | None) -> bool:
    """``application/json``, ``application/*+json`` or ``text/json``; an absent header passes.

    Some senders omit the header entirely; their bodies are still parsed as JSON.
    """
    if header is None or not header.strip():
        return True
    media_type = header.split(";", 1)[0].strip().lower()
    return media_type in ("application/json", "text/json") or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def read_buffered(request: web.Request, limit: int) -> bytes:
    """The whole body of a request whose body has all arrived (``request.content.is_eof()``),
    taken at once: no await, no chunk iteration (the common case: a webhook's body comes
    in the packets of its head)."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise BodyTooLarge(f"body of {declared} bytes is over the limit of {limit}")
    try:
        body = request.content.read_nowait()
    except RequestPayloadError as exc:
        raise BrokenBody(f"the body could not be read: {exc}".strip()) from None
    if len(body) > limit:  # decompressed (Content-Encoding), or sent without a length
        raise BodyTooLarge(f"body is over the limit of {limit} bytes")
    return body


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The whole body, refusing as soon as it is known to exceed ``limit`` bytes."""
    if request.content.is_eof():
        return read_buffered(request, limit)
    declared = request.content_length
    if declared is not None and declared > limit:
        raise BodyTooLarge(f"body of {declared} bytes is over the limit of {limit}")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(f"body is over the limit of {limit} bytes")
            chunks.append(chunk)
    except RequestPayloadError as exc:
        raise BrokenBody(f"the body could not be read: {exc}".strip()) from None
    except ConnectionResetError:
        raise BrokenBody("the sender closed the connection before the body was complete") from None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
