"""Who may post to a source: shared tokens, Chatwoot HMAC signatures, CIDR allowlists."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from collections.abc import Mapping

from relay.config import Source, seconds

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class AuthError(Exception):
    """Credentials missing or wrong; the message is safe to show the sender."""


def presented_token(query: Mapping[str, str], headers: Mapping[str, str]) -> str | None:
    """The token from ``?token=``, ``X-Relay-Token`` or ``Authorization: Bearer``."""
    token = query.get("token") or headers.get("X-Relay-Token")
    if token:
        return token
    authorization = headers.get("Authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None


def token_matches(presented: str, tokens: list[str]) -> bool:
    """Constant-time over every configured token, so timing tells nothing."""
    # header text may hold undecodable bytes (aiohttp keeps them as surrogates)
    given = presented.encode("utf-8", "surrogateescape")
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(given, token.encode())
    return matched


def verify_chatwoot_signature(
    secret: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    tolerance: float,
    now: float | None = None,
) -> None:
    """``X-Chatwoot-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<raw body>">``."""
    if not signature or not timestamp:
        raise AuthError("missing X-Chatwoot-Signature or X-Chatwoot-Timestamp")
    try:
        sent_at = int(timestamp.strip())
    except ValueError:
        raise AuthError("X-Chatwoot-Timestamp is not Unix seconds") from None
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance:
        raise AuthError("X-Chatwoot-Timestamp is outside the allowed window")
    expected = hmac.new(
        secret.encode(),
        timestamp.strip().encode("utf-8", "surrogateescape") + b"." + body,
        hashlib.sha256,
    ).hexdigest()
    given = signature.strip()
    if given.lower().startswith("sha256="):
        given = given[len("sha256=") :]
    if not hmac.compare_digest(given.lower().encode("utf-8", "surrogateescape"), expected.encode()):
        raise AuthError("X-Chatwoot-Signature does not match the body")


class SourceAuth:
    """The checks configured for one source, compiled once."""

    def __init__(self, source: Source) -> None:
        self.tokens = list(source.tokens)
        self.signing_secret = source.signing_secret
        self.tolerance = seconds(source.signature_tolerance)
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(cidr, strict=False) for cidr in source.allow_cidrs
        )

    @property
    def is_open(self) -> bool:
        return not (self.tokens or self.signing_secret or self.networks)

    def check_peer(self, remote: str | None) -> None:
        if not self.networks:
            return
        try:
            address = ipaddress.ip_address(remote or "")
        except ValueError:
            raise AuthError("the sender's address is not allowed") from None
        if not any(address in network for network in self.networks):
            raise AuthError("the sender's address is not allowed")

    def check_token(self, query: Mapping[str, str], headers: Mapping[str, str]) -> None:
        if not self.tokens:
            return
        token = presented_token(query, headers)
        if token is None:
            raise AuthError("missing token (?token=, X-Relay-Token or Authorization: Bearer)")
        if not token_matches(token, self.tokens):
            raise AuthError("invalid token")

    def check_signature(self, body: bytes, headers: Mapping[str, str]) -> None:
        if self.signing_secret is None:
            return
        verify_chatwoot_signature(
            self.signing_secret,
            body,
            headers.get("X-Chatwoot-Signature"),
            headers.get("X-Chatwoot-Timestamp"),
            self.tolerance,
        )
