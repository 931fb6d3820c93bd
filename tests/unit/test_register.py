"""`relay register`: PlugChat and Chatwoot APIs, against stand-in servers on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from relay.cli import main
from relay.config import Config
from relay.register import RegisterError, register
from tests.support import free_port, make_config

# PlugChat's "update-webhooks" doc, in its order.
PLUGCHAT_KINDS = [
    "finishAttendance",
    "startAttendance",
    "receiveMessage",
    "sendingMessage",
    "messageDeliveryError",
    "messageStatus",
    "whenDisconnecting",
]
# Chatwoot's Webhook::ALLOWED_WEBHOOK_EVENTS that relay maps (not inbox_created/updated).
CHATWOOT_EVENTS = {
    "conversation_created",
    "conversation_status_changed",
    "conversation_updated",
    "message_created",
    "message_updated",
    "webwidget_triggered",
    "contact_created",
    "contact_updated",
    "conversation_typing_on",
    "conversation_typing_off",
}

CONFIG = """
sources:
  plug: {provider: plugchat, tokens: ["${PLUG_TOKEN}", "older"]}
  plug-open: {provider: plugchat}
  nexloo: {provider: chatwoot, tokens: ["nx-token"], signing_secret: "${NX_HMAC:-}"}
"""
PUBLIC = "https://relay.example.com/gw/"


def config(**env: str) -> Config:
    return make_config(CONFIG, PLUG_TOKEN=env.get("PLUG_TOKEN", "p&t 1"), **env)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class StandIn:
    """A provider API on loopback: records requests, answers from a table."""

    answers: dict[tuple[str, str], tuple[int, Any]]
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self.seen.append(
            Seen(
                request.method,
                request.path_qs,
                dict(request.headers),
                json.loads(raw) if raw else None,
            )
        )
        status, body = self.answers.get((request.method, request.path), (404, {"error": "nope"}))
        if isinstance(body, str):
            return web.Response(status=status, text=body)
        if status in (301, 302):
            raise web.HTTPFound(body["location"])
        return web.json_response(body, status=status)


@asynccontextmanager
async def stand_in(answers: dict[tuple[str, str], tuple[int, Any]]) -> AsyncIterator[StandIn]:
    api = StandIn(answers)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", api.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    api.url = str(server.make_url("")).rstrip("/")
    try:
        yield api
    finally:
        await server.close()


PLUG_PATH = "/api/integrations/update-webhooks"
CW_PATH = "/api/v1/accounts/3/webhooks"


# --- PlugChat --------------------------------------------------------------------------


async def test_plugchat_puts_all_seven_kind_urls() -> None:
    async with stand_in({("PUT", PLUG_PATH): (200, {"success": True})}) as api:
        result = await register(
            config(),
            "plugchat",
            source="plug",
            public_url=PUBLIC,
            api_url=api.url,
            insecure=True,
            api_token="1nEFbU3EktLnV7LIIzX",
            env={},
        )
    [seen] = api.seen
    assert (seen.method, seen.path) == ("PUT", PLUG_PATH)
    assert seen.headers["Authorization"] == "1nEFbU3EktLnV7LIIzX"  # raw, as PlugChat's doc shows
    assert seen.headers["Content-Type"].startswith("application/json")
    assert set(seen.body) == set(PLUGCHAT_KINDS)
    for kind in PLUGCHAT_KINDS:
        assert (
            seen.body[kind] == f"https://relay.example.com/gw/v1/hooks/plug/{kind}?token=p%26t%201"
        )
    report = result.report()
    assert "p%26t" not in report and "?token=***" in report
    assert all(kind in report for kind in PLUGCHAT_KINDS)


async def test_plugchat_reads_url_and_token_from_the_environment() -> None:
    async with stand_in({("PUT", PLUG_PATH): (204, "")}) as api:
        result = await register(
            config(),
            "plugchat",
            source="plug-open",
            public_url="https://relay.example.com",
            env={"PLUGCHAT_API_URL": api.url + "/", "PLUGCHAT_API_TOKEN": "env-token"},
            insecure=True,
        )
    [seen] = api.seen
    assert seen.headers["Authorization"] == "env-token"
    # A source without tokens gets bare URLs, and the operator is told.
    assert (
        seen.body["messageStatus"] == "https://relay.example.com/v1/hooks/plug-open/messageStatus"
    )
    assert "has no tokens" in result.report()


async def test_plugchat_refuses_plain_http_before_calling() -> None:
    async with stand_in({("PUT", PLUG_PATH): (200, {})}) as api:
        with pytest.raises(RegisterError, match="HTTPS webhooks only"):
            await register(
                config(),
                "plugchat",
                source="plug",
                public_url="http://relay.example.com",
                api_url=api.url,
                insecure=True,
                api_token="t",
                env={},
            )
    assert api.seen == []


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            401,
            {"message": "Token invalido"},
            'answered 401 Unauthorized: {"message": "Token invalido"}',
        ),
        (415, "x" * 1000, "answered 415 Unsupported Media Type: " + "x" * 200 + "…"),
        (500, "", "answered 500 Internal Server Error: (empty body)"),
    ],
)
async def test_plugchat_http_failures_are_one_line(status: int, body: Any, expected: str) -> None:
    async with stand_in({("PUT", PLUG_PATH): (status, body)}) as api:
        with pytest.raises(RegisterError) as caught:
            await register(
                config(),
                "plugchat",
                source="plug",
                public_url=PUBLIC,
                api_url=api.url,
                insecure=True,
                api_token="t",
                env={},
            )
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"PlugChat: PUT {api.url}{PLUG_PATH} {expected}")


async def test_unreachable_api_and_missing_inputs() -> None:
    common: dict[str, Any] = {"public_url": PUBLIC, "env": {}}
    with pytest.raises(RegisterError, match=r"cannot reach http://127.0.0.1") as unreachable:
        await register(
            config(),
            "plugchat",
            source="plug",
            api_url=f"http://127.0.0.1:{free_port()}",
            insecure=True,
            api_token="t",
            **common,
        )
    assert "ssl:" not in str(unreachable.value)  # a plain http:// API has no TLS to speak of
    with pytest.raises(RegisterError, match=r"no PlugChat API token: .*PLUGCHAT_API_TOKEN"):
        await register(config(), "plugchat", source="plug", **common)
    with pytest.raises(RegisterError, match=r"no source named 'nope' .*\(sources: nexloo, plug"):
        await register(config(), "plugchat", source="nope", api_token="t", **common)
    with pytest.raises(RegisterError, match="'nexloo' is a chatwoot source"):
        await register(config(), "plugchat", source="nexloo", api_token="t", **common)
    with pytest.raises(RegisterError, match=r"no Chatwoot URL: .*CHATWOOT_API_URL"):
        await register(config(), "chatwoot", source="nexloo", account="3", api_token="t", **common)
    with pytest.raises(RegisterError, match="account id is a number"):
        await register(config(), "chatwoot", source="nexloo", account="x", api_token="t", **common)
    with pytest.raises(RegisterError, match="not an http"):
        await register(
            config(),
            "chatwoot",
            source="nexloo",
            account="3",
            api_token="t",
            env={},
            public_url="relay.example.com",
        )


# --- Chatwoot --------------------------------------------------------------------------


def _created(webhook_id: int, url: str, secret: str) -> tuple[int, Any]:
    return 200, {"payload": {"webhook": {"id": webhook_id, "url": url, "secret": secret}}}


async def test_chatwoot_creates_the_webhook() -> None:
    hook = "https://relay.example.com/gw/v1/hooks/nexloo?token=nx-token"
    answers = {
        ("GET", CW_PATH): (200, {"payload": {"webhooks": [{"id": 1, "url": "https://else/"}]}}),
        ("POST", CW_PATH): _created(7, hook, "Wq3nB8sT2vYx9LpK4mZc7RdH"),
    }
    async with stand_in(answers) as api:
        result = await register(
            config(),
            "chatwoot",
            source="nexloo",
            public_url=PUBLIC,
            account="3",
            api_url=api.url,
            insecure=True,
            api_token="cw-token",
            env={},
        )
    listing, create = api.seen
    assert (listing.method, listing.path) == ("GET", CW_PATH)
    assert (create.method, create.path) == ("POST", CW_PATH)
    for seen in api.seen:
        assert seen.headers["api_access_token"] == "cw-token"
    assert list(create.body) == ["webhook"]
    webhook = create.body["webhook"]
    assert webhook["url"] == hook
    assert set(webhook["subscriptions"]) == CHATWOOT_EVENTS
    assert len(webhook["subscriptions"]) == len(CHATWOOT_EVENTS)
    assert (result.action, result.webhook_id) == ("created", "7")
    report = result.report()
    assert "created webhook 7" in report and "nx-token" not in report
    # Chatwoot (4.12+) answers with the secret it signs with: the operator needs it.
    assert "signing secret: Wq3nB8sT2vYx9LpK4mZc7RdH" in report


async def test_chatwoot_updates_the_webhook_already_pointing_here() -> None:
    old = "https://relay.example.com/gw/v1/hooks/nexloo?token=rotated-away"
    answers = {
        ("GET", CW_PATH): (200, {"payload": {"webhooks": [{"id": 12, "url": old}]}}),
        ("PATCH", f"{CW_PATH}/12"): _created(12, "…", "s3cret"),
    }
    async with stand_in(answers) as api:
        result = await register(
            config(NX_HMAC="s3cret"),
            "chatwoot",
            source="nexloo",
            public_url=PUBLIC,
            account="3",
            env={"CHATWOOT_API_URL": api.url, "CHATWOOT_API_TOKEN": "env-cw"},
            insecure=True,
        )
    _, update = api.seen
    assert (update.method, update.path) == ("PATCH", f"{CW_PATH}/12")
    assert update.headers["api_access_token"] == "env-cw"
    assert update.body["webhook"]["url"].endswith("/v1/hooks/nexloo?token=nx-token")
    assert (result.action, result.webhook_id) == ("updated", "12")
    assert "matches sources.nexloo.signing_secret" in result.report()


async def test_chatwoot_failures() -> None:
    invalid = {"message": "Url has already been taken", "attributes": ["url"]}
    answers = {
        ("GET", CW_PATH): (200, {"payload": {"webhooks": []}}),
        ("POST", CW_PATH): (422, invalid),
    }
    common: dict[str, Any] = {
        "source": "nexloo",
        "public_url": PUBLIC,
        "account": "3",
        "api_token": "t",
        "env": {},
        "insecure": True,
    }
    async with stand_in(answers) as api:
        with pytest.raises(RegisterError) as caught:
            await register(config(), "chatwoot", api_url=api.url, **common)
    assert str(caught.value) == (
        f"Chatwoot: POST {api.url}{CW_PATH} answered 422 Unprocessable Entity: "
        + json.dumps(invalid)
    )
    unauthorized = {("GET", CW_PATH): (401, {"error": "Invalid Access Token"})}
    async with stand_in(unauthorized) as api:
        with pytest.raises(RegisterError, match=r"answered 401 Unauthorized: .*Invalid Access"):
            await register(config(), "chatwoot", api_url=api.url, **common)
    assert [s.method for s in api.seen] == ["GET"]
    # A redirect is never followed (it would turn the POST into a GET): the operator is told.
    moved = {("GET", CW_PATH): (302, {"location": "https://chat.example.com/login"})}
    async with stand_in(moved) as api:
        with pytest.raises(RegisterError, match=r"redirected to https://chat.example.com/login"):
            await register(config(), "chatwoot", api_url=api.url, **common)


# --- CLI ---------------------------------------------------------------------------------


async def test_cli_register(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "relay.yaml"
    path.write_text(CONFIG)
    argv = ["register", "plugchat", "--config", str(path), "--source", "plug"]
    env = {"PLUG_TOKEN": "abc", "PLUG_API": "t"}
    async with stand_in({("PUT", PLUG_PATH): (200, {})}) as api:
        flags = [
            "--public-url",
            PUBLIC,
            "--api-url",
            api.url,
            "--api-token",
            "$PLUG_API",
            "--insecure",
        ]
        with pytest.MonkeyPatch.context() as mp:
            for name, value in env.items():
                mp.setenv(name, value)
            code = await asyncio.to_thread(main, [*argv, *flags])
            out, err = capsys.readouterr()
            assert (code, err) == (0, "")
            assert "now posts source 'plug'" in out and "abc" not in out
            code = await asyncio.to_thread(
                main, [*argv, "--public-url", "http://insecure", "--api-url", api.url]
            )
            out, err = capsys.readouterr()
            assert code == 1 and out == ""
            assert err.startswith("relay: PlugChat accepts HTTPS webhooks only")
            assert err.count("\n") == 1
    assert len(api.seen) == 1


# --- hygiene -----------------------------------------------------------------------------

API_TOKEN = "plugchat-api-token-0123456789"
RELAY_TOKEN = "relay-plug-token-abcdef012345"


async def _echoing_api() -> tuple[TestServer, str]:
    """An API that refuses a change with 422, quoting all it was sent, headers included."""

    async def echo(request: web.Request) -> web.Response:
        if request.method == "GET":  # Chatwoot's listing: none yet, so relay creates one
            return web.json_response({"payload": {"webhooks": []}})
        raw = await request.read()
        received = {"received": json.loads(raw) if raw else None, "headers": dict(request.headers)}
        return web.json_response(received, status=422)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server, str(server.make_url("")).rstrip("/")


@pytest.mark.parametrize("provider", ["plugchat", "chatwoot"])
async def test_an_echoing_api_never_gets_a_token_into_the_error(provider: str) -> None:
    server, url = await _echoing_api()
    try:
        with pytest.raises(RegisterError) as caught:
            await register(
                make_config(f"sources: {{s: {{provider: {provider}, tokens: ['{RELAY_TOKEN}']}}}}"),
                provider,  # type: ignore[arg-type]
                source="s",
                public_url=PUBLIC,
                account="3",
                api_url=url,
                api_token=API_TOKEN,
                env={},
                insecure=True,
            )
    finally:
        await server.close()
    message = str(caught.value)
    assert "answered 422" in message
    assert RELAY_TOKEN not in message and API_TOKEN not in message
    assert "***" in message


async def test_plain_http_api_urls_are_refused_before_anything_is_sent() -> None:
    async with stand_in({("PUT", PLUG_PATH): (200, {})}) as api:
        with pytest.raises(RegisterError, match=r"is plain HTTP: .*pass --insecure"):
            await register(
                config(), "plugchat", source="plug", public_url=PUBLIC, api_url=api.url,
                api_token=API_TOKEN, env={},
            )  # fmt: skip
        assert api.seen == []
        result = await register(
            config(), "plugchat", source="plug", public_url=PUBLIC, api_url=api.url,
            api_token=API_TOKEN, env={}, insecure=True,
        )  # fmt: skip
    assert len(api.seen) == 1
    assert "warning: " in result.report() and "plain HTTP (--insecure)" in result.report()


async def test_the_api_token_comes_from_a_file_or_a_named_variable(tmp_path: Any) -> None:
    token_file = tmp_path / "plugchat.token"
    token_file.write_text(API_TOKEN + "\n")
    common: dict[str, Any] = {"source": "plug", "public_url": PUBLIC, "insecure": True}
    async with stand_in({("PUT", PLUG_PATH): (200, {})}) as api:
        await register(
            config(), "plugchat", api_url=api.url, api_token_file=str(token_file), env={}, **common
        )
        await register(
            config(), "plugchat", api_url=api.url, api_token="$MY_TOKEN",
            env={"MY_TOKEN": "from-the-variable"}, **common,
        )  # fmt: skip
    assert [seen.headers["Authorization"] for seen in api.seen] == [API_TOKEN, "from-the-variable"]
    with pytest.raises(RegisterError, match=r"--api-token \$MISSING: MISSING is not set"):
        await register(config(), "plugchat", api_token="$MISSING", env={}, **common)
    with pytest.raises(RegisterError, match=r"--api-token-file .*: cannot read"):
        await register(
            config(), "plugchat", api_token_file=str(tmp_path / "nope"), env={}, **common
        )
    with pytest.raises(RegisterError, match="not both"):
        await register(
            config(), "plugchat", api_token="x", api_token_file=str(token_file), env={}, **common
        )


async def test_cli_warns_about_a_token_on_the_command_line(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "relay.yaml"
    path.write_text(CONFIG)
    token_file = tmp_path / "token"
    token_file.write_text(API_TOKEN)
    argv = ["register", "plugchat", "--config", str(path), "--source", "plug", "--insecure"]
    async with stand_in({("PUT", PLUG_PATH): (200, {})}) as api:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("PLUG_TOKEN", RELAY_TOKEN)
            flags = ["--public-url", PUBLIC, "--api-url", api.url]
            code = await asyncio.to_thread(main, [*argv, *flags, "--api-token", API_TOKEN])
            out, err = capsys.readouterr()
            assert code == 0
            assert err.startswith("relay: warning: --api-token on the command line shows in ps")
            assert API_TOKEN not in out + err and RELAY_TOKEN not in out + err
            code = await asyncio.to_thread(
                main, [*argv, *flags, "--api-token-file", str(token_file)]
            )
            out, err = capsys.readouterr()
            assert (code, err) == (0, "")
    assert [seen.headers["Authorization"] for seen in api.seen] == [API_TOKEN, API_TOKEN]
