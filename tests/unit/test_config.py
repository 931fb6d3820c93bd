from __future__ import annotations

from pathlib import Path

import pytest

from relay.config import ConfigError, interpolate, load, parse

EXAMPLE = Path(__file__).parents[2] / "config" / "relay.example.yaml"


def error_of(text: str, **env: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(text, env=env)
    return str(caught.value)


def test_the_example_config_loads_with_defaults() -> None:
    config = load(EXAMPLE, env={})
    assert config.kafka is None
    assert config.listen.port == 8080
    assert config.sources["nexloo"].provider == "chatwoot"
    assert config.sources["nexloo"].signing_secret is None  # ${NEXLOO_HMAC:-} is unset
    assert [r.topic for r in config.routes] == ["chat.messages", "chat.attendance"]


def test_defaults() -> None:
    config = parse("", env={})
    assert config.topics.events == "chat.events"
    assert config.topics.raw == "relay.raw"
    assert config.topics.deadletter == "relay.deadletter"
    assert config.limits.max_body_bytes == 1024 * 1024
    config = parse("kafka: {bootstrap_servers: 'a:1, b:2'}", env={})
    assert config.kafka is not None
    assert config.kafka.servers == ["a:1", "b:2"]
    assert config.kafka.idempotence is True


def test_interpolation() -> None:
    env = {"TOKEN": "abc", "PORT": "9000"}
    assert interpolate("${TOKEN}", env) == "abc"
    assert interpolate("x-${MISSING:-fallback}-y", env) == "x-fallback-y"
    assert interpolate("$${TOKEN}", env) == "${TOKEN}"
    config = parse(
        "listen: {port: '${PORT}'}\nsources: {a: {provider: chatwoot, tokens: ['${TOKEN}']}}",
        env=env,
    )
    assert config.listen.port == 9000
    assert config.sources["a"].tokens == ["abc"]


def test_interpolated_values_cannot_change_structure() -> None:
    config = parse("data_dir: '${DIR}'", env={"DIR": "x\nkafka: {bootstrap_servers: evil}"})
    assert config.kafka is None
    assert config.data_dir.startswith("x\n")


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("routes: [{name: a, topic: 3}]", {}, "routes[0].topic: expected str, got int"),
        ("listen: {port: ten}", {}, "listen.port: expected int, got str"),
        ("sources: {x: {provider: zendesk}}", {}, "sources.x.provider: invalid enum value"),
        ("sources: {x: {provider: chatwoot, tokenz: []}}", {}, "sources.x.tokenz: unknown field"),
        ("routes: [{name: a}]", {}, "routes[0].topic: required field is missing"),
        ("kafka: {}", {}, "kafka.bootstrap_servers: required field is missing"),
        ("colour: red", {}, "colour: unknown field"),
        (
            "sources: {x: {provider: chatwoot, tokens: ['${NOPE}']}}",
            {},
            "sources.x.tokens[0]: environment variable NOPE is not set",
        ),
        (
            "sources: {x: {provider: chatwoot, tokens: ['${NOPE:-}']}}",
            {},
            "sources.x.tokens[0]: empty token",
        ),
        ("sources: {x: {provider: plugchat, signing_secret: s}}", {}, "only chatwoot sources"),
        ("sources: {x: {provider: chatwoot, allow_cidrs: [nope]}}", {}, "allow_cidrs[0]"),
        ("sources: {'bad name': {provider: chatwoot}}", {}, "sources.bad name:"),
        ("routes: [{name: a, topic: t}, {name: a, topic: u}]", {}, "routes[1].name: duplicate"),
        ("listen: {port: 70000}", {}, "listen.port: must be at most 65535 (got 70000)"),
        ("limits: {max_body_bytes: 0}", {}, "limits.max_body_bytes: must be at least 1 (got 0)"),
        ("limits: {header_timeout: 0}", {}, "limits.header_timeout: must be positive"),
        ("limits: {body_timeout: .inf}", {}, "limits.body_timeout: a duration must be finite"),
        ("kafka: {bootstrap_servers: k, request_timeout_ms: 0}", {}, "kafka.request_timeout_ms"),
        ("kafka: {bootstrap_servers: k, linger_ms: -1}", {}, "kafka.linger_ms: cannot be negative"),
        ("kafka: {bootstrap_servers: ' , '}", {}, "kafka.bootstrap_servers: no servers given"),
        ("sources: {x: {provider: chatwoot, max_in_flight: 0}}", {}, "must be at least 1 (got 0)"),
        ("console: {index_max_events: 5}", {}, "console.index_max_events: must be at least 1000"),
        ("a: [", {}, "<config>:1:5: invalid YAML"),
        ("- just a list", {}, "the top level must be a mapping"),
    ],
)
def test_mistakes_are_one_line_with_their_path(
    text: str, env: dict[str, str], message: str
) -> None:
    error = error_of(text, **env)
    assert message in error
    assert "\n" not in error
    assert "Traceback" not in error


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "missing.yaml")


SUBSCRIBER = "subscribers: [{name: crm, url: 'https://crm.example.com/hook', %s}]"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("retry: {max_attempts: ten}", "subscribers[0].retry.max_attempts: expected int, got str"),
        ("retry: {max_attempts: 0}", "subscribers[0].retry.max_attempts: must be at least 1"),
        ("timeout: 10 years", "subscribers[0].timeout: expected a duration"),
        ("retry: {initial: -1}", "subscribers[0].retry.initial: a duration cannot be negative"),
        ("secret: not-base64!", "subscribers[0].secret: expected a Standard Webhooks secret"),
        ("secrets: [whsec_c2hvcnQ=]", "subscribers[0].secrets[0]: a webhook secret must hold"),
        ("rate_limit: fast", "subscribers[0].rate_limit: expected a rate like 100/s"),
        ("format: xml", "subscribers[0].format: invalid enum value"),
        ("on_4xx: ignore", "subscribers[0].on_4xx: invalid enum value"),
        ("max_in_flight: 0", "subscribers[0].max_in_flight: must be at least 1"),
        ("colour: red", "subscribers[0].colour: unknown field"),
        (
            "circuit_breaker: {failures: 5}",
            "subscribers[0].circuit_breaker.failures: unknown field",
        ),
        (
            "circuit_breaker: {failure_rate: 1.5}",
            "subscribers[0].circuit_breaker.failure_rate: must be at most 1 (got 1.5)",
        ),
        (
            "circuit_breaker: {failure_rate: 0}",
            "subscribers[0].circuit_breaker.failure_rate: must be positive (got 0)",
        ),
        (
            "circuit_breaker: {failure_rate: lots}",
            "subscribers[0].circuit_breaker.failure_rate: expected float, got str",
        ),
        (
            "circuit_breaker: {min_attempts: 0}",
            "subscribers[0].circuit_breaker.min_attempts: must be at least 1",
        ),
        (
            "circuit_breaker: {half_open_attempts: 0}",
            "subscribers[0].circuit_breaker.half_open_attempts: must be at least 1",
        ),
        (
            "circuit_breaker: {window: 0s}",
            "subscribers[0].circuit_breaker.window: must be positive",
        ),
        (
            "circuit_breaker: {no_success_for: soon}",
            "subscribers[0].circuit_breaker.no_success_for: expected a duration",
        ),
        (
            "circuit_breaker: {cooldown: 0}",
            "subscribers[0].circuit_breaker.cooldown: must be positive",
        ),
        (
            "circuit_breaker: {cooldown: 10s, cooldown_max: 5s}",
            "subscribers[0].circuit_breaker.cooldown_max: must be at least cooldown",
        ),
    ],
)
def test_subscriber_mistakes(extra: str, message: str) -> None:
    assert message in error_of(SUBSCRIBER % extra)


def test_subscriber_url_and_names() -> None:
    assert "subscribers[0].url: expected an http(s) URL" in error_of(
        "subscribers: [{name: a, url: 'ftp://x'}]"
    )
    assert "subscribers[1].name: duplicate" in error_of(
        "subscribers: [{name: a, url: 'http://x'}, {name: a, url: 'http://y'}]"
    )


def test_subscriber_defaults_and_units() -> None:
    from relay.config import per_second, seconds

    config = parse(
        SUBSCRIBER % "secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, rate_limit: 6000/m", env={}
    )
    [sub] = config.subscribers
    assert sub.topic_list(config.topics.events) == ["chat.events"]
    assert sub.format == "cloudevent" and sub.on_4xx == "deadletter"
    assert sub.retry.max_attempts == 12 and sub.max_in_flight == 32
    assert per_second(sub.rate_limit or 0) == 100.0
    assert [seconds(v) for v in ("500ms", "10s", "5m", "1h", "1d", 2)] == [
        0.5,
        10,
        300,
        3600,
        86400,
        2,
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("topics: {events: 'has space'}", "topics.events: 'has space' is not a Kafka topic name"),
        ("routes: [{name: a, topic: 'a/b'}]", "routes[0].topic: 'a/b' is not a Kafka topic name"),
        (
            "subscribers: [{name: a, url: 'http://x', topics: ['']}]",
            "subscribers[0].topics[0]: '' is not a Kafka topic name",
        ),
        ("topics: {raw: '..'}", "topics.raw: '..' is not a Kafka topic name"),
        ("subscribers: [{name: a, url: 'http://x', topics: []}]", "topics: cannot be empty"),
        (
            "subscribers: [{name: 'a b', url: 'http://x'}]",
            "subscribers[0].name: 'a b' is not a name (letters, digits, '_', '.', '-'",
        ),
        (
            "subscribers: [{name: a, url: 'http://x', headers: {'X Bad': v}}]",
            "subscribers[0].headers: 'X Bad' is not an HTTP header name",
        ),
        (
            "subscribers: [{name: a, url: 'http://x', headers: {X-Ok: \"a\\r\\nb\"}}]",
            "subscribers[0].headers.X-Ok: control characters are not allowed",
        ),
    ],
)
def test_topic_and_header_names(text: str, message: str) -> None:
    assert message in error_of(text)


def test_duplicate_keys_name_both_lines() -> None:
    text = (
        "sources:\n"
        "  nexloo: {provider: chatwoot, tokens: [a]}\n"
        "listen: {port: 8080}\n"
        "sources:\n"
        "  other: {provider: plugchat, tokens: [b]}\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse(text, env={}, name="relay.yaml")
    assert str(caught.value) == "relay.yaml:4:1: duplicate key 'sources' (first at line 1)"


def test_duplicate_keys_are_refused_at_any_depth() -> None:
    text = "sources:\n  s:\n    provider: chatwoot\n    tokens: [a]\n    tokens: [b]\n"
    assert error_of(text) == "<config>:5:5: duplicate key 'tokens' (first at line 4)"
    flow = "routes:\n  - {name: a, topic: t, name: b}\n"
    assert error_of(flow) == "<config>:2:25: duplicate key 'name' (first at line 2)"


def test_merge_keys_may_be_overridden() -> None:
    text = (
        "x-base: &base {provider: chatwoot, tokens: [a]}\nsources:\n  s: {<<: *base, tokens: [b]}\n"
    )
    with pytest.raises(ConfigError, match="x-base: unknown field"):
        parse(text, env={})
    config = parse(
        "sources:\n  a: &base {provider: chatwoot, tokens: [a]}\n  b: {<<: *base, tokens: [b]}\n",
        env={},
    )
    assert config.sources["b"].tokens == ["b"]


def test_admin_listen() -> None:
    config = parse("admin: {listen: {host: 127.0.0.1, port: 9090}}", env={})
    assert config.admin.listen is not None and config.admin.listen.port == 9090
    assert parse("", env={}).admin.listen is None
    assert error_of("admin: {listen: {port: 8080}}") == (
        "admin.listen.port: the same port as listen.port; pick another"
    )
    assert error_of("admin: {listen: {port: 0}}") == "admin.listen.port: must be at least 1 (got 0)"


def test_unknown_fields_suggest_the_known_one() -> None:
    assert error_of("subscriber: []") == "subscriber: unknown field (did you mean 'subscribers'?)"
    assert error_of("sources: {s: {provider: chatwoot, token: [a]}}") == (
        "sources.s.token: unknown field (did you mean 'tokens'?)"
    )
    assert error_of("subscribers: [{name: a, url: 'http://x', retry: {max_atempts: 3}}]") == (
        "subscribers[0].retry.max_atempts: unknown field (did you mean 'max_attempts'?)"
    )
    assert error_of("zzz: 1") == "zzz: unknown field"


def test_bad_enum_values_list_the_allowed_ones() -> None:
    assert error_of("sources: {s: {provider: chatwoot-cloud}}") == (
        "sources.s.provider: invalid enum value 'chatwoot-cloud' "
        "(expected one of: chatwoot, plugchat)"
    )
    assert error_of("kafka: {bootstrap_servers: a, compression: brotli}") == (
        "kafka.compression: invalid enum value 'brotli' (expected one of: gzip, lz4, snappy, zstd)"
    )


def test_type_errors_use_yaml_words() -> None:
    assert error_of("sources: {s: {provider: chatwoot, tokens: abc}}") == (
        "sources.s.tokens: expected a list, got str"
    )
    assert error_of("listen: 8080") == "listen: expected a mapping, got int"
