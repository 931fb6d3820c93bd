"""Safe defaults: guessable secrets are refused beyond loopback, and the list of the shipped
examples' values is complete."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from relay.config import parse
from relay.hardening import EXAMPLE_SECRETS, insecure_listen, is_loopback

ROOT = Path(__file__).parents[2]
STRONG = "a-long-random-token-0123456789"


def config(tokens: str, extra: str = "") -> str:
    return f"sources: {{cw: {{provider: chatwoot, tokens: [{tokens}]}}}}\n{extra}"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.5.6.7", "::1", "[::1]", "localhost"])
def test_loopback_is_allowed_anything(host: str) -> None:
    assert is_loopback(host)
    assert insecure_listen(parse(config("dev-nexloo-token")), host) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "relay.internal", ""])
def test_beyond_loopback_an_example_or_short_secret_is_refused(host: str) -> None:
    refusal = insecure_listen(
        parse(config(f'dev-nexloo-token, "{STRONG}", short', "admin: {token: tiny}")), host
    )
    assert refusal is not None
    assert "sources.cw.tokens[0] is a value from relay's shipped examples" in refusal
    assert "sources.cw.tokens[2] is shorter than 16 bytes" in refusal
    assert "admin.token is shorter than 16 bytes" in refusal
    assert "tokens[1]" not in refusal
    assert "dev-nexloo-token" not in refusal and "tiny" not in refusal  # values never shown


def test_every_kind_of_secret_is_checked() -> None:
    text = config(
        f'"{STRONG}"',
        "metrics: {token: m}\n"
        "subscribers: [{name: s, url: 'https://x.example/h', "
        "secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}]\n",
    )
    text = text.replace("tokens:", "signing_secret: shh, tokens:")
    refusal = insecure_listen(parse(text), "0.0.0.0")
    assert refusal is not None
    for where in ("sources.cw.signing_secret", "metrics.token", "subscribers[0].secret"):
        assert where in refusal


def test_strong_secrets_or_the_operators_say_so_are_allowed() -> None:
    assert insecure_listen(parse(config(f'"{STRONG}"')), "0.0.0.0") is None
    allowed = parse(config("dev-nexloo-token", "allow_insecure_defaults: true"))
    assert insecure_listen(allowed, "0.0.0.0") is None


def test_every_secret_default_the_repository_ships_is_known() -> None:
    """``${VAR:-default}`` of a token or secret in any shipped file is in EXAMPLE_SECRETS."""
    defaults = set()
    for path in [*ROOT.glob("config/*.yaml"), *ROOT.glob("deploy/**/*.yaml")]:
        for name, default in re.findall(r"\$\{([A-Z0-9_]+):-([^}]*)\}", path.read_text()):
            if default and re.search(r"TOKEN|SECRET|HMAC|PASSWORD", name):
                defaults.add(default)
    assert defaults  # the example config keeps its laptop defaults
    assert defaults <= EXAMPLE_SECRETS
    # and the values of the example Kubernetes Secret
    for path in ROOT.glob("deploy/**/secret*.yaml"):
        for document in yaml.safe_load_all(path.read_text()):
            for name, value in (document or {}).get("stringData", {}).items():
                if value and re.search(r"TOKEN|SECRET|HMAC|PASSWORD", name):
                    assert value in EXAMPLE_SECRETS, (path.name, name)


def test_a_placeholder_is_refused_whatever_its_length() -> None:
    refusal = insecure_listen(parse(config('"CHANGE_ME_before-going-live-0123456789"')), "::")
    assert refusal is not None and "shipped examples" in refusal


def test_relay_check_warns_what_serve_would_refuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from relay.cli import main

    path = tmp_path / "relay.yaml"
    path.write_text("listen: {host: 0.0.0.0}\n" + config("dev-trino-token"))
    assert main(["check", "--config", str(path)]) == 0
    err = capsys.readouterr().err
    assert "relay: warning: relay serve will refuse this: refusing to listen on 0.0.0.0" in err
    assert main(["check", "--strict", "--config", str(path)]) == 1
    capsys.readouterr()
    path.write_text("listen: {host: 127.0.0.1}\n" + config("dev-trino-token"))
    assert main(["check", "--config", str(path)]) == 0
    assert "refuse" not in capsys.readouterr().err
