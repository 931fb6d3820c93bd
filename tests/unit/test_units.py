"""Durations and rates are decoded once, by msgspec, into floats; errors keep their path; the
wall clock in epoch milliseconds."""

from __future__ import annotations

import time

import msgspec
import pytest

from relay import units
from relay.config import ConfigError, parse
from relay.units import PerSecond, Seconds, dec_hook, enc_hook


class Sample(msgspec.Struct):
    wait: Seconds = Seconds(1)
    rate: PerSecond | None = None


@pytest.mark.parametrize(
    ("given", "expected"),
    [("500ms", 0.5), ("10s", 10.0), ("5m", 300.0), ("1h", 3600.0), ("1d", 86400.0), (2, 2.0)],
)
def test_a_duration_is_decoded_into_seconds(given: object, expected: float) -> None:
    sample = msgspec.convert({"wait": given}, Sample, dec_hook=dec_hook)
    assert type(sample.wait) is Seconds and sample.wait == expected


@pytest.mark.parametrize(("given", "expected"), [("100/s", 100.0), ("6000/m", 100.0), (5, 5.0)])
def test_a_rate_is_decoded_into_events_per_second(given: object, expected: float) -> None:
    sample = msgspec.convert({"rate": given}, Sample, dec_hook=dec_hook)
    assert type(sample.rate) is PerSecond and sample.rate == expected


def test_the_config_holds_floats_and_consumers_parse_nothing() -> None:
    config = parse(
        "limits: {body_timeout: 2m}\nsources: {a: {provider: chatwoot, rate_limit: 60/m}}"
    )
    assert config.limits.body_timeout == 120.0
    assert config.sources["a"].rate_limit == 1.0
    assert config.shutdown_grace == 20.0  # the default, written "20s" in config.py


@pytest.mark.parametrize(
    ("yaml", "message"),
    [
        ("limits: {body_timeout: soon}", "limits.body_timeout: expected a duration like 500ms"),
        ("shutdown_grace: -1", "shutdown_grace: a duration cannot be negative"),
        ("dedupe: {window: true}", "dedupe.window: expected a duration like 10s, got a boolean"),
        (
            "sources: {a: {provider: chatwoot, rate_limit: fast}}",
            "sources.a.rate_limit: expected a rate like 100/s",
        ),
        (
            "subscribers: [{name: s, url: 'http://x', retry: {initial: x}}]",
            "subscribers[0].retry.initial: expected a duration",
        ),
    ],
)
def test_a_bad_value_is_reported_at_its_path(yaml: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse(yaml)
    assert str(refused.value).startswith(message)


def test_encoding_writes_the_floats() -> None:
    sample = Sample(Seconds(1.5), PerSecond(2))
    assert msgspec.json.encode(sample, enc_hook=enc_hook) == b'{"wait":1.5,"rate":2.0}'


def test_now_is_the_wall_clock_in_epoch_milliseconds() -> None:
    before = int(time.time() * 1000)
    now = units.now_ms()
    assert isinstance(now, int)
    assert before <= now <= int(time.time() * 1000)
