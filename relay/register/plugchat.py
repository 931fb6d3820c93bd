"""PlugChat: ``PUT {api}/api/integrations/update-webhooks`` with one URL per kind."""

from __future__ import annotations

from relay.config import Config
from relay.providers.plugchat import KINDS as PLUGCHAT_KINDS
from relay.register.base import (
    Registration,
    Request,
    check,
    hook_url,
    notes,
)
from relay.register.http import call, client, redact

PLUGCHAT_PATH = "/api/integrations/update-webhooks"


async def register_plugchat(config: Config, request: Request) -> Registration:
    target = check(config, "plugchat", request)
    entry, api, token, source = target.entry, target.api, target.token, request.source
    relay_token = entry.tokens[0] if entry.tokens else None
    urls = {kind: hook_url(target.base, source, kind, relay_token) for kind in PLUGCHAT_KINDS}
    async with client(request.request_timeout) as session:
        await call(
            session,
            "PUT",
            api + PLUGCHAT_PATH,
            what="PlugChat",
            headers={"Authorization": token, "Accept": "application/json"},
            body=urls,
            secrets=[token, *entry.tokens],
        )
    return Registration(
        provider="plugchat",
        source=source,
        api_url=api,
        urls={kind: redact(url) for kind, url in urls.items()},
        notes=notes(target, source),
    )
