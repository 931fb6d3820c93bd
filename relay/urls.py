"""Subscriber URLs as relay shows them (``relay check``, the admin API, the AsyncAPI
document): never the user:password, and never a query value, where tokens live."""

from __future__ import annotations

from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit


def _netloc(parts: SplitResult) -> str:
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host  # IPv6
    return f"{host}:{parts.port}" if parts.port is not None else host


def public_parts(url: str) -> tuple[str, str, str]:
    """scheme, host[:port] and path: no credentials, query or fragment."""
    parts = urlsplit(url)
    return parts.scheme, _netloc(parts), parts.path


def without_query(url: str) -> str:
    """``scheme://host[:port]/path``: no credentials, query or fragment."""
    scheme, netloc, path = public_parts(url)
    return f"{scheme}://{netloc}{path}"


def masked(url: str) -> str:
    """The URL without user:password and with each query value shown as ``***``."""
    parts = urlsplit(url)
    query = urlencode([(name, "***") for name, _ in parse_qsl(parts.query, True)], safe="*")
    return urlunsplit((parts.scheme, _netloc(parts), parts.path, query, ""))
