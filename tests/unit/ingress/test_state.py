"""The ingress's part of the live settings, built whole from a configuration."""

from __future__ import annotations

from prometheus_client import REGISTRY

from relay.ingress.auth import SourceAuth
from relay.ingress.state import IngressSettings, SourceEntry
from tests.support import make_config


def settings(yaml_text: str) -> IngressSettings:
    return IngressSettings.from_config(make_config(yaml_text))


def test_one_source_may_take_every_slot() -> None:
    built = settings("sources: {cw: {provider: chatwoot}}\nlimits: {max_in_flight: 100}")
    assert built.max_in_flight == 100
    assert built.sources["cw"].max_in_flight == 100


def test_several_sources_get_a_quarter_each_unless_told() -> None:
    built = settings(
        """
sources:
  a: {provider: chatwoot}
  b: {provider: plugchat}
  c: {provider: chatwoot, max_in_flight: 60}
limits: {max_in_flight: 100}
"""
    )
    shares = {name: entry.max_in_flight for name, entry in built.sources.items()}
    assert shares == {"a": 25, "b": 25, "c": 60}


def test_a_tiny_limit_still_leaves_each_source_one_slot() -> None:
    built = settings(
        "sources: {a: {provider: chatwoot}, b: {provider: chatwoot}}\nlimits: {max_in_flight: 2}"
    )
    assert [entry.max_in_flight for entry in built.sources.values()] == [1, 1]


def test_only_a_source_with_a_rate_limit_has_a_limiter() -> None:
    built = settings(
        "sources: {free: {provider: chatwoot}, slow: {provider: chatwoot, rate_limit: 5/s}}"
    )
    assert built.sources["free"].limiter is None
    limiter = built.sources["slow"].limiter
    assert limiter is not None and limiter.rate == 5.0


def test_what_the_handlers_read_comes_from_the_config() -> None:
    built = settings(
        """
sources: {cw: {provider: chatwoot}}
limits: {max_body_bytes: 2048, body_timeout: 1500ms}
debug_errors: true
metrics: {token: metrics-token-0123456789}
admin: {token: admin-token-0123456789abcdef}
"""
    )
    assert (built.max_body_bytes, built.body_timeout) == (2048, 1.5)
    assert built.debug_errors is True
    assert built.metrics_token == "metrics-token-0123456789"
    assert built.admin_token == "admin-token-0123456789abcdef"
    entry = built.sources["cw"]
    assert (entry.name, entry.provider, entry.in_flight) == ("cw", "chatwoot", 0)


def test_counting_an_outcome_resolves_its_counter_once() -> None:
    config = make_config("sources: {st: {provider: chatwoot}}")
    entry = SourceEntry("st-count", "chatwoot", SourceAuth(config.sources["st"]))
    labels = {"source": "st-count", "outcome": "accepted"}
    before = REGISTRY.get_sample_value("relay_requests_total", labels) or 0.0
    entry.count("accepted")
    entry.count("accepted")
    assert REGISTRY.get_sample_value("relay_requests_total", labels) == before + 2
    assert list(entry._counters) == ["accepted"]
