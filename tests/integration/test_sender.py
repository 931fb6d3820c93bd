"""One subscriber's sender against a real local HTTP server (no broker needed)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import standardwebhooks
from aiohttp import web
from aiohttp.test_utils import TestServer

from relay.delivery.sender import Sender
from tests.pki import OPENSSL, make_pki
from tests.subscriber import Subscriber
from tests.support import free_port, make_config

pytestmark = pytest.mark.integration

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
OTHER = "whsec_" + "A" * 32

needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command")


def sender_for(url: str) -> Sender:
    config = make_config(
        f"""
subscribers:
  - {{name: crm, url: "{url}", secrets: [{SECRET}, {OTHER}]}}
"""
    )
    return Sender(config.subscribers[0])


async def test_cookies_a_subscriber_sets_are_not_sent_back() -> None:
    subscriber = await Subscriber(
        script=lambda sub, body, headers: (200, {"Set-Cookie": "session=abc; Path=/"})
    ).start()
    # by name: aiohttp's default jar keeps no cookies from a bare IP address
    sender = sender_for(subscriber.url.replace("127.0.0.1", "localhost"))
    await sender.start()
    try:
        for n in range(3):
            result = await sender.deliver(f"evt_{n}", b'{"n": %d}' % n, "application/json")
            assert result.delivered
    finally:
        await sender.close()
        await subscriber.close()
    assert [r.headers.get("Cookie") for r in subscriber.received] == [None, None, None]
    # every attempt is signed with every secret (rotation), over its own id and body
    for secret in (SECRET, OTHER):
        for got in subscriber.received:
            standardwebhooks.Webhook(secret).verify(got.body, got.headers)


async def test_relay_sets_its_own_headers_over_a_subscribers_headers() -> None:
    seen: list[dict[str, list[str]]] = []

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        seen.append({name.lower(): request.headers.getall(name) for name in request.headers})
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("/hook"))
    config = make_config(
        f"""
subscribers:
  - name: crm
    url: "{url}"
    secret: {SECRET}
    headers: {{X-Tenant: loja, User-Agent: crm-gateway, content-type: text/plain,
              Webhook-Id: spoofed, Content-Length: "1"}}
"""
    )
    sender = Sender(config.subscribers[0])
    await sender.start()
    try:
        result = await sender.deliver("evt_1", b'{"n": 1}', "application/json")
    finally:
        await sender.close()
        await server.close()
    assert result.delivered
    [headers] = seen
    assert headers["x-tenant"] == ["loja"]
    assert headers["user-agent"] == ["crm-gateway"]  # a subscriber may name itself
    assert headers["content-type"] == ["application/json"]
    assert headers["webhook-id"] == ["evt_1"]
    assert headers["content-length"] == ["8"]


@needs_openssl
async def test_an_https_subscriber_is_verified_against_the_trusted_cas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pki = make_pki(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(pki.cert, pki.key)
    bodies: list[bytes] = []

    async def hook(request: web.Request) -> web.Response:
        bodies.append(await request.read())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls).start()
    config = make_config(
        f"""
subscribers:
  - {{name: crm, url: "https://localhost:{port}/hook", retry: {{max_attempts: 1}}}}
"""
    )
    try:
        untrusted = Sender(config.subscribers[0])  # the system's CAs do not know this one
        await untrusted.start()
        try:
            refused = await untrusted.deliver("evt_1", b"{}", "application/json")
        finally:
            await untrusted.close()
        monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca))  # what an operator sets to trust it
        trusted = Sender(config.subscribers[0])
        await trusted.start()
        try:
            delivered = await trusted.deliver("evt_2", b'{"n": 2}', "application/json")
        finally:
            await trusted.close()
    finally:
        await runner.cleanup()
    assert not refused.delivered
    assert refused.error is not None and "CERTIFICATE_VERIFY_FAILED" in refused.error
    assert delivered.delivered
    assert bodies == [b'{"n": 2}']


async def test_a_header_that_cannot_be_sent_is_rejected_at_once_and_nothing_goes_out() -> None:
    subscriber = await Subscriber().start()
    sender = sender_for(subscriber.url)
    await sender.start()
    try:
        result = await sender.deliver(
            "evt_1", b"{}", "application/json", {"ce-subject": "a\r\nX-Injected: 1"}
        )
    finally:
        await sender.close()
        await subscriber.close()
    assert (result.delivered, result.reason, result.attempts) == (False, "rejected", 1)
    assert result.error is not None and result.error.startswith("InvalidHeader")
    assert subscriber.received == []
