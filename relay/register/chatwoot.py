"""Chatwoot: the account webhooks API, one webhook per source, updated in place."""

from __future__ import annotations

from typing import Any

from relay.config import Config
from relay.providers.chatwoot import EVENT_TYPES as CHATWOOT_EVENTS
from relay.register.base import (
    Registration,
    Request,
    check,
    hook_url,
    notes,
)
from relay.register.http import call, client, redact

CHATWOOT_SUBSCRIPTIONS: tuple[str, ...] = tuple(CHATWOOT_EVENTS)
"""Every Chatwoot webhook event relay turns into a canonical event."""


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


async def register_chatwoot(config: Config, request: Request) -> Registration:
    target = check(config, "chatwoot", request)
    entry, api, token, source = target.entry, target.api, target.token, request.source
    account = (request.account or "").strip()
    url = hook_url(target.base, source, None, entry.tokens[0] if entry.tokens else None)
    endpoint = f"{api}/api/v1/accounts/{account}/webhooks"
    headers = {"api_access_token": token, "Accept": "application/json"}
    body = {
        "webhook": {
            "url": url,
            "name": f"relay {source}",
            "subscriptions": list(CHATWOOT_SUBSCRIPTIONS),
        }
    }
    async with client(request.request_timeout) as session:
        secrets = [token, *entry.tokens]
        listing = await call(
            session, "GET", endpoint, what="Chatwoot", headers=headers, secrets=secrets
        )
        existing = next(
            (w for w in _webhooks(listing) if _without_query(w.get("url")) == _without_query(url)),
            None,
        )
        if existing is not None and existing.get("id") is not None:
            action = "updated"
            answer = await call(
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
            answer = await call(
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
    told = notes(target, source)
    secret = webhook.get("secret")
    if isinstance(secret, str) and secret:
        if entry.signing_secret == secret:
            told.append(f"signing secret: matches sources.{source}.signing_secret")
        else:
            told.append(
                f"signing secret: {secret}\n  Chatwoot signs every delivery with it; set it "
                f"as sources.{source}.signing_secret (through an environment variable) so "
                "relay verifies X-Chatwoot-Signature"
            )
    return Registration(
        provider="chatwoot",
        source=source,
        api_url=api,
        urls={"webhook": redact(url)},
        action=action,
        webhook_id=None if webhook_id is None else str(webhook_id),
        subscriptions=CHATWOOT_SUBSCRIPTIONS,
        notes=told,
    )
