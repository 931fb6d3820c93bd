"""The provider APIs over HTTP: one call, its errors as one line, no secret in them."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import aiohttp

from relay.register.base import RegisterError

_EXCERPT = 200
_MAX_ANSWER = 1024 * 1024
"""The most of an API answer read (a listing of webhooks is far smaller)."""
_REDACTED = "***"
_MIN_SCRUBBED = 6
"""Shorter secrets are not searched for in text: masking every "t" would hide the message."""


def redact(url: str) -> str:
    """A hook URL with its ``?token=`` value masked."""
    return re.sub(r"([?&]token=)[^&]*", rf"\g<1>{_REDACTED}", url)


def _scrub(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret (as sent, and URL-quoted) and any ``token=`` value masked."""
    for secret in sorted({s for s in secrets if len(s) >= _MIN_SCRUBBED}, key=len, reverse=True):
        for form in {secret, quote(secret, safe=""), quote(secret)}:
            text = text.replace(form, _REDACTED)
    return redact(text)


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    if not text:
        return "(empty body)"
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "…"


async def call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    what: str,
    headers: Mapping[str, str],
    body: Any = None,
    secrets: Sequence[str] = (),
) -> Any:
    """One API request; the parsed JSON answer (None if it is not JSON) or RegisterError.

    ``secrets`` never appear in an error, even when the API echoes the request back."""
    try:
        async with session.request(
            method, url, headers=dict(headers), json=body, allow_redirects=False
        ) as response:
            raw = await response.content.read(_MAX_ANSWER)
            text = raw.decode(response.get_encoding() if raw else "utf-8", errors="replace")
            if not 200 <= response.status < 300:
                where = response.headers.get("Location")
                hint = f" (redirected to {where}: use that as --api-url)" if where else ""
                raise RegisterError(
                    f"{what}: {method} {url} answered {response.status} "
                    f"{response.reason or ''}".rstrip()
                    + f"{hint}: {_excerpt(_scrub(text, secrets))}"
                )
    except TimeoutError:
        raise RegisterError(f"{what}: no answer from {url} in time") from None
    except aiohttp.ClientError as exc:
        raise RegisterError(f"{what}: cannot reach {url}: {exc}") from None
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        return None


def client(timeout: float) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))
