"""Safe defaults: relay will not listen beyond loopback with secrets anyone can guess.

The example configuration and compose file fall back to development values so the README's
first command works on a laptop. Those values are public; so is any secret short enough to
guess. Listening on a non-loopback address with one of them is refused, unless the operator
says ``allow_insecure_defaults: true``.
"""

from __future__ import annotations

import ipaddress

from relay.config import Config

MIN_SECRET_BYTES = 16

EXAMPLE_SECRETS = frozenset(
    {
        # config/relay.example.yaml
        "dev-nexloo-token",
        "dev-trino-token",
        "dev-plugchat-token",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  # also the Standard Webhooks docs' example
        # deploy/compose.yaml and deploy/relay.compose.yaml (before they required their own)
        "whsec_ZGV2LW9ubHktZWNoby1zZWNyZXQtMzJieXRlcyE=",
        # deploy/kubernetes/secret.example.yaml
        "change-me-nexloo-token",
        "change-me-trino-token",
        "change-me-plugchat-token",
    }
)
"""Every secret value the repository ships (tests/unit/test_hardening.py keeps this list
complete: it reads every ``${VAR:-default}`` of the shipped files)."""


_PLACEHOLDER = "change-me"
"""A value saying it is to be replaced (``change-me-…``) was not."""


def is_loopback(host: str) -> bool:
    if host.strip().lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a hostname other than localhost may resolve anywhere


def secrets(config: Config) -> list[tuple[str, str]]:
    """(where, value) of every secret an attacker could use against this relay."""
    found: list[tuple[str, str]] = []
    for name, source in sorted(config.sources.items()):
        found += [(f"sources.{name}.tokens[{i}]", t) for i, t in enumerate(source.tokens)]
        if source.signing_secret:
            found.append((f"sources.{name}.signing_secret", source.signing_secret))
    if config.admin.token:
        found.append(("admin.token", config.admin.token))
    if config.metrics.token:
        found.append(("metrics.token", config.metrics.token))
    for i, sub in enumerate(config.subscribers):
        if sub.secret:
            found.append((f"subscribers[{i}].secret", sub.secret))
        found += [(f"subscribers[{i}].secrets[{j}]", s) for j, s in enumerate(sub.secrets)]
    return found


def weak_secrets(config: Config) -> list[str]:
    """What is wrong with each weak secret, by its place in the file (values never shown)."""
    problems = []
    for where, value in secrets(config):
        if value in EXAMPLE_SECRETS or _PLACEHOLDER in value.lower().replace("_", "-"):
            problems.append(f"{where} is a value from relay's shipped examples")
        elif len(value.encode()) < MIN_SECRET_BYTES:
            problems.append(f"{where} is shorter than {MIN_SECRET_BYTES} bytes")
    return problems


def insecure_listen(config: Config, host: str) -> str | None:
    """Why relay must not listen on ``host`` with this configuration, or None."""
    if config.allow_insecure_defaults or is_loopback(host):
        return None
    problems = weak_secrets(config)
    if not problems:
        return None
    return (
        f"refusing to listen on {host} (beyond loopback) with guessable secrets: "
        f"{'; '.join(problems)}. Set your own (for example `openssl rand -hex 24`), listen "
        "on 127.0.0.1, or set allow_insecure_defaults: true"
    )
