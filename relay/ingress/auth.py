"""Who may post to a source: shared tokens, provider signatures, CIDR allowlists."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping

from relay.config import Source
from relay.providers import PROVIDERS, SignatureError

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


class SourceAuth:
    """The checks configured for one source, compiled once."""

    def __init__(self, source: Source) -> None:
        self.tokens = list(source.tokens)
        self.signing_secret = source.signing_secret
        self.verify = PROVIDERS[source.provider].verify
        self.tolerance = source.signature_tolerance
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
        if self.signing_secret is None or self.verify is None:
            return
        try:
            self.verify(self.signing_secret, body, headers, self.tolerance)
        except SignatureError as exc:
            raise AuthError(str(exc)) from None
