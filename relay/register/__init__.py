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

from collections.abc import Awaitable, Callable
from typing import Any

from relay.config import Config
from relay.providers import PROVIDERS
from relay.register.base import (
    API_TOKEN_ENV,
    API_URL_ENV,
    RegisterError,
    Registration,
    Request,
    hook_url,
    public_base,
)
from relay.register.chatwoot import register_chatwoot
from relay.register.plugchat import register_plugchat

REGISTRARS: dict[str, Callable[[Config, Request], Awaitable[Registration]]] = {
    "chatwoot": register_chatwoot,
    "plugchat": register_plugchat,
}
"""The providers with a webhook registration API (``relay register <name>``)."""


async def register(config: Config, provider: str, **options: Any) -> Registration:
    """``relay register PROVIDER``: the CLI's entry point; ``options`` are :class:`Request`'s."""
    registrar = REGISTRARS.get(provider)
    if registrar is None:
        raise RegisterError(f"{provider} has no webhook registration API")
    request = Request(**options)
    if PROVIDERS[provider].register_needs_account and request.account is None:
        title = PROVIDERS[provider].title
        raise RegisterError(f"{provider} needs --account ID (the {title} account id)")
    return await registrar(config, request)


__all__ = [
    "API_TOKEN_ENV",
    "API_URL_ENV",
    "REGISTRARS",
    "RegisterError",
    "Registration",
    "Request",
    "hook_url",
    "public_base",
    "register",
]
