"""``relay register``: point a provider's webhook settings at this relay through its API.

- PlugChat: ``PUT {api}/api/integrations/update-webhooks`` with one URL per kind
  (``{public}/v1/hooks/{source}/{kind}``). PlugChat accepts HTTPS webhooks only and cannot
  send headers, so the URLs carry the source's first token as ``?token=``.
- Chatwoot: the account webhooks API, ``{api}/api/v1/accounts/{id}/webhooks``, subscribed to
  every event relay maps. A webhook already pointing at this source's endpoint is updated
  (its token may have rotated) instead of being created twice.

The provider API itself may be plain HTTP (a stand-in, a private install); the public URL
is what the provider will call and must be HTTPS for PlugChat.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp

from relay.config import Config, Source
from relay.providers.chatwoot import EVENT_TYPES as CHATWOOT_EVENTS
from relay.providers.plugchat import KINDS as PLUGCHAT_KINDS

Provider = Literal["plugchat", "chatwoot"]

PLUGCHAT_API_URL = "https://www.plugchat.com.br"
PLUGCHAT_PATH = "/api/integrations/update-webhooks"
CHATWOOT_SUBSCRIPTIONS: tuple[str, ...] = tuple(CHATWOOT_EVENTS)
"""Every Chatwoot webhook event relay turns into a canonical event."""

API_URL_ENV = {"plugchat": "PLUGCHAT_API_URL", "chatwoot": "CHATWOOT_API_URL"}
API_TOKEN_ENV = {"plugchat": "PLUGCHAT_API_TOKEN", "chatwoot": "CHATWOOT_API_TOKEN"}
DEFAULT_TIMEOUT = 30.0
_EXCERPT = 200
_MAX_ANSWER = 1024 * 1024
"""The most of an API answer read (a listing of webhooks is far smaller)."""
_REDACTED = "***"
_MIN_SCRUBBED = 6
"""Shorter secrets are not searched for in text: masking every "t" would hide the message."""


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


def _redact(url: str) -> str:
    return re.sub(r"([?&]token=)[^&]*", rf"\g<1>{_REDACTED}", url)


# --- HTTP ----------------------------------------------------------------------------


def _scrub(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret (as sent, and URL-quoted) and any ``token=`` value masked."""
    for secret in sorted({s for s in secrets if len(s) >= _MIN_SCRUBBED}, key=len, reverse=True):
        for form in {secret, quote(secret, safe=""), quote(secret)}:
            text = text.replace(form, _REDACTED)
    return _redact(text)


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    if not text:
        return "(empty body)"
    return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "…"


async def _call(
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
    except aiohttp.ClientConnectorError as exc:  # its str() says "ssl:default" even for http://
        reason = exc.os_error.strerror or str(exc.os_error)
        raise RegisterError(f"{what}: cannot reach {url}: {reason}") from None
    except aiohttp.ClientError as exc:
        raise RegisterError(f"{what}: cannot reach {url}: {exc}") from None
    try:
        return json.loads(text) if text.strip() else None
    except ValueError:
        return None


def _session(timeout: float) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))


# --- providers -----------------------------------------------------------------------


async def register_plugchat(
    config: Config,
    *,
    source: str,
    public_url: str,
    api_url: str | None = None,
    api_token: str | None = None,
    env: Mapping[str, str] | None = None,
    request_timeout: float = DEFAULT_TIMEOUT,
    api_token_file: str | None = None,
    insecure: bool = False,
) -> Registration:
    env = os.environ if env is None else env
    entry = _source(config, source, "plugchat")
    base = public_base(public_url, https_only=True)
    api = _api_base("plugchat", api_url, env, insecure=insecure)
    token = _api_token("plugchat", api_token, env, api_token_file)
    relay_token = entry.tokens[0] if entry.tokens else None
    urls = {kind: hook_url(base, source, kind, relay_token) for kind in PLUGCHAT_KINDS}
    async with _session(request_timeout) as session:
        await _call(
            session,
            "PUT",
            api + PLUGCHAT_PATH,
            what="PlugChat",
            headers={"Authorization": token, "Accept": "application/json"},
            body=urls,
            secrets=[token, *entry.tokens],
        )
    notes = [] if relay_token else [_open_note(source)]
    notes += _insecure_note(api)
    return Registration(
        provider="plugchat",
        source=source,
        api_url=api,
        urls={kind: _redact(url) for kind, url in urls.items()},
        notes=notes,
    )


def _insecure_note(api: str) -> list[str]:
    if not api.startswith("http://"):
        return []
    return [f"warning: {api} is plain HTTP (--insecure): the API token was sent in the clear"]


def _open_note(source: str) -> str:
    return (
        f"note: source {source!r} has no tokens, so these URLs carry none; "
        f"add one under sources.{source}.tokens and register again"
    )


def _webhooks(listing: Any) -> list[dict[str, Any]]:
    """The webhooks of a Chatwoot index answer (``{"payload": {"webhooks": [...]}}``)."""
    payload = listing.get("payload", listing) if isinstance(listing, dict) else listing
    webhooks = payload.get("webhooks") if isinstance(payload, dict) else payload
    return [w for w in webhooks if isinstance(w, dict)] if isinstance(webhooks, list) else []


def _webhook(answer: Any) -> dict[str, Any]:
    """The webhook of a Chatwoot create/update answer (``{"payload": {"webhook": {...}}}``)."""
    node = answer
    for key in ("payload", "webhook"):
        if isinstance(node, dict) and isinstance(node.get(key), dict):
            node = node[key]
    return node if isinstance(node, dict) else {}


def _without_query(url: Any) -> str:
    return str(url).split("?", 1)[0].rstrip("/")


async def register_chatwoot(
    config: Config,
    *,
    source: str,
    public_url: str,
    account: str,
    api_url: str | None = None,
    api_token: str | None = None,
    env: Mapping[str, str] | None = None,
    request_timeout: float = DEFAULT_TIMEOUT,
    api_token_file: str | None = None,
    insecure: bool = False,
) -> Registration:
    env = os.environ if env is None else env
    entry = _source(config, source, "chatwoot")
    base = public_base(public_url, https_only=False)
    if not account.strip().isdigit():
        raise RegisterError(f"--account {account!r}: a Chatwoot account id is a number")
    api = _api_base("chatwoot", api_url, env, insecure=insecure)
    token = _api_token("chatwoot", api_token, env, api_token_file)
    url = hook_url(base, source, None, entry.tokens[0] if entry.tokens else None)
    endpoint = f"{api}/api/v1/accounts/{account.strip()}/webhooks"
    headers = {"api_access_token": token, "Accept": "application/json"}
    body = {
        "webhook": {
            "url": url,
            "name": f"relay {source}",
            "subscriptions": list(CHATWOOT_SUBSCRIPTIONS),
        }
    }
    async with _session(request_timeout) as session:
        secrets = [token, *entry.tokens]
        listing = await _call(
            session, "GET", endpoint, what="Chatwoot", headers=headers, secrets=secrets
        )
        existing = next(
            (w for w in _webhooks(listing) if _without_query(w.get("url")) == _without_query(url)),
            None,
        )
        if existing is not None and existing.get("id") is not None:
            action = "updated"
            answer = await _call(
                session,
                "PATCH",
                f"{endpoint}/{existing['id']}",
                what="Chatwoot",
                headers=headers,
                body=body,
                secrets=secrets,
            )
        else:
            action = "created"
            answer = await _call(
                session,
                "POST",
                endpoint,
                what="Chatwoot",
                headers=headers,
                body=body,
                secrets=secrets,
            )
    webhook = _webhook(answer)
    webhook_id = webhook.get("id", existing.get("id") if existing else None)
    notes = [] if entry.tokens else [_open_note(source)]
    notes += _insecure_note(api)
    secret = webhook.get("secret")
    if isinstance(secret, str) and secret:
        if entry.signing_secret == secret:
            notes.append(f"signing secret: matches sources.{source}.signing_secret")
        else:
            notes.append(
                f"signing secret: {secret}\n  Chatwoot signs every delivery with it; set it "
                f"as sources.{source}.signing_secret (through an environment variable) so "
                "relay verifies X-Chatwoot-Signature"
            )
    return Registration(
        provider="chatwoot",
        source=source,
        api_url=api,
        urls={"webhook": _redact(url)},
        action=action,
        webhook_id=None if webhook_id is None else str(webhook_id),
        subscriptions=CHATWOOT_SUBSCRIPTIONS,
        notes=notes,
    )


async def register(
    config: Config,
    provider: Provider,
    *,
    source: str,
    public_url: str,
    account: str | None = None,
    api_url: str | None = None,
    api_token: str | None = None,
    env: Mapping[str, str] | None = None,
    api_token_file: str | None = None,
    insecure: bool = False,
) -> Registration:
    """``relay register PROVIDER``: the CLI's entry point."""
    if provider == "plugchat":
        return await register_plugchat(
            config,
            source=source,
            public_url=public_url,
            api_url=api_url,
            api_token=api_token,
            env=env,
            api_token_file=api_token_file,
            insecure=insecure,
        )
    if account is None:
        raise RegisterError("chatwoot needs --account ID (the Chatwoot account id)")
    return await register_chatwoot(
        config,
        source=source,
        public_url=public_url,
        account=account,
        api_url=api_url,
        api_token=api_token,
        env=env,
        api_token_file=api_token_file,
        insecure=insecure,
    )
