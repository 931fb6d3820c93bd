"""PlugChat: ``PUT {api}/api/integrations/update-webhooks`` with one URL per kind."""

from __future__ import annotations

from relay.config import Config
from relay.providers.plugchat import KINDS as PLUGCHAT_KINDS
from relay.register.base import (
    PLUGCHAT_PATH,
    Registration,
    Request,
    check,
    hook_url,
    insecure_note,
    open_note,
)
from relay.register.http import call, client, redact


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
    notes = [] if relay_token else [open_note(source)]
    notes += insecure_note(api)
    return Registration(
        provider="plugchat",
        source=source,
        api_url=api,
        urls={kind: redact(url) for kind, url in urls.items()},
        notes=notes,
    )
