"""What every registration shares: the request, its checks, the answer, the errors."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from relay.config import Config, Source
from relay.events import ProviderName as Provider

PLUGCHAT_API_URL = "https://www.plugchat.com.br"

API_URL_ENV = {"plugchat": "PLUGCHAT_API_URL", "chatwoot": "CHATWOOT_API_URL"}
API_TOKEN_ENV = {"plugchat": "PLUGCHAT_API_TOKEN", "chatwoot": "CHATWOOT_API_TOKEN"}
DEFAULT_TIMEOUT = 30.0


class RegisterError(Exception):
    """A registration failure, already phrased as one line for the operator."""


@dataclass(frozen=True)
class Registration:
    """What the provider now calls."""

    provider: Provider
    source: str
    api_url: str
    urls: dict[str, str]
    """Webhook name (PlugChat kind, or ``webhook``) → URL, with the token redacted."""
    action: str = "updated"
    webhook_id: str | None = None
    subscriptions: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)

    def report(self) -> str:
        if self.provider == "plugchat":
            head = f"PlugChat ({self.api_url}) now posts source {self.source!r}'s webhooks to:"
        else:
            head = (
                f"Chatwoot ({self.api_url}): {self.action} webhook {self.webhook_id} for "
                f"source {self.source!r}, {len(self.subscriptions)} events, posting to:"
            )
        width = max(len(name) for name in self.urls)
        lines = [head, *(f"  {name:<{width}}  {url}" for name, url in self.urls.items())]
        return "\n".join([*lines, *self.notes])


# --- inputs --------------------------------------------------------------------------


def _source(config: Config, name: str, provider: Provider) -> Source:
    source = config.sources.get(name)
    if source is None:
        known = ", ".join(sorted(config.sources)) or "none"
        raise RegisterError(f"no source named {name!r} in the configuration (sources: {known})")
    if source.provider != provider:
        raise RegisterError(
            f"source {name!r} is a {source.provider} source; use relay register {source.provider}"
        )
    return source


def public_base(public_url: str, *, https_only: bool) -> str:
    """The relay's public base URL, checked: http(s), a host, no query or fragment."""
    parsed = urlsplit(public_url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise RegisterError(f"--public-url {public_url!r} is not an http(s) URL with a host")
    if https_only and parsed.scheme != "https":
        raise RegisterError(
            f"PlugChat accepts HTTPS webhooks only: --public-url must be https:// "
            f"(got {public_url!r})"
        )
    if parsed.query or parsed.fragment:
        raise RegisterError(f"--public-url {public_url!r}: no query or fragment, please")
    return urlunsplit((parsed.scheme, parsed.netloc, parsed.path.rstrip("/"), "", ""))


def _name(provider: Provider) -> str:
    return "PlugChat" if provider == "plugchat" else "Chatwoot"


def _api_base(
    provider: Provider, given: str | None, env: Mapping[str, str], *, insecure: bool
) -> str:
    value = (
        given
        or env.get(API_URL_ENV[provider])
        or (PLUGCHAT_API_URL if provider == "plugchat" else None)
    )
    if not value:
        raise RegisterError(
            f"no Chatwoot URL: pass --api-url (e.g. https://chat.example.com) "
            f"or set {API_URL_ENV[provider]}"
        )
    parsed = urlsplit(value.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise RegisterError(f"--api-url {value!r} is not an http(s) URL with a host")
    if parsed.scheme == "http" and not insecure:
        raise RegisterError(
            f"--api-url {value!r} is plain HTTP: the {_name(provider)} API token and this "
            "source's relay token would cross the network in the clear; use https://, or "
            "pass --insecure if this API is on a network you trust"
        )
    return urlunsplit((parsed.scheme, parsed.netloc, parsed.path.rstrip("/"), "", ""))


def _api_token(
    provider: Provider,
    given: str | None,
    env: Mapping[str, str],
    token_file: str | None = None,
) -> str:
    """The provider API token: ``--api-token-file``, ``--api-token '$VAR'`` (or a literal),
    else ``$PLUGCHAT_API_TOKEN`` / ``$CHATWOOT_API_TOKEN``."""
    if given and token_file:
        raise RegisterError("pass --api-token or --api-token-file, not both")
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise RegisterError(f"--api-token-file {token_file}: cannot read: {reason}") from None
        if not token:
            raise RegisterError(f"--api-token-file {token_file}: the file is empty")
        return token
    if given and given.startswith("$"):
        variable = given[1:].strip("{}")
        token = env.get(variable, "").strip()
        if not token:
            raise RegisterError(f"--api-token {given}: {variable} is not set")
        return token
    token = (given or env.get(API_TOKEN_ENV[provider]) or "").strip()
    if not token:
        raise RegisterError(
            f"no {_name(provider)} API token: set {API_TOKEN_ENV[provider]}, or pass "
            "--api-token-file PATH or --api-token '$VAR'"
        )
    return token


def hook_url(base: str, source: str, kind: str | None, token: str | None) -> str:
    """The URL a provider posts to; ``?token=`` when the source has tokens."""
    url = f"{base}/v1/hooks/{quote(source, safe='')}"
    if kind is not None:
        url += f"/{kind}"
    if token is not None:
        url += f"?token={quote(token, safe='')}"
    return url


@dataclass(frozen=True, kw_only=True)
class Request:
    """What ``relay register`` was asked: the same options for every provider."""

    source: str
    public_url: str
    account: str | None = None
    """Chatwoot's account id (required there)."""
    api_url: str | None = None
    api_token: str | None = None
    env: Mapping[str, str] | None = None
    request_timeout: float = DEFAULT_TIMEOUT
    api_token_file: str | None = None
    insecure: bool = False


@dataclass(frozen=True)
class Target:
    """A request checked against the configuration: the source, where relay is reached,
    the provider API and its token."""

    entry: Source
    base: str
    api: str
    token: str


def check(config: Config, provider: Provider, request: Request) -> Target:
    env = os.environ if request.env is None else request.env
    entry = _source(config, request.source, provider)
    base = public_base(request.public_url, https_only=provider == "plugchat")
    if provider == "chatwoot" and not (request.account or "").strip().isdigit():
        raise RegisterError(f"--account {request.account!r}: a Chatwoot account id is a number")
    api = _api_base(provider, request.api_url, env, insecure=request.insecure)
    token = _api_token(provider, request.api_token, env, request.api_token_file)
    return Target(entry, base, api, token)


def notes(target: Target, source: str) -> list[str]:
    """What the operator should know after registering: an open source, a plain-HTTP API."""
    found = []
    if not target.entry.tokens:
        found.append(
            f"note: source {source!r} has no tokens, so these URLs carry none; "
            f"add one under sources.{source}.tokens and register again"
        )
    if target.api.startswith("http://"):
        found.append(
            f"warning: {target.api} is plain HTTP (--insecure): the API token was sent in the clear"
        )
    return found
