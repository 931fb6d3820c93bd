"""``relay check``: validate a configuration as serve does, print what it sets up, warn."""

from __future__ import annotations

import argparse
import os
import sys

from relay.cli.common import load_config, print_table, refuse
from relay.config import Config, Kafka
from relay.providers import PROVIDERS
from relay.urls import without_query


def _patterns(value: str | list[str] | None) -> str:
    if value is None:
        return "*"
    return value if isinstance(value, str) else ",".join(value)


def cmd_check(args: argparse.Namespace) -> int:
    from relay import checks, preflight
    from relay.hardening import insecure_listen

    config = load_config(args)
    problems = [] if args.skip_local else preflight.problems(config)
    notes: list[str] = []
    if args.connect and not problems:
        notes, unreachable = preflight.broker(config)
        problems += unreachable
    if problems:
        return refuse(problems)
    warnings = checks.warnings(config)
    if (refusal := insecure_listen(config, config.listen.host)) is not None:
        warnings.append(f"relay serve will refuse this: {refusal}")
    bus = (
        f"kafka {','.join(config.kafka.servers)} {_kafka_security(config.kafka)}"
        + ("" if args.connect else " (not contacted: --connect checks it)")
        if config.kafka
        else (f"embedded log in {config.data_dir}")
    )
    verdict = f"with {len(warnings)} warning(s)" if warnings else "OK"
    print(f"configuration {verdict}: {args.config or os.environ.get('RELAY_CONFIG')}")
    print(f"listen   {config.listen.host}:{config.listen.port}")
    if config.workers != 1:
        from relay.workers import count

        print(f"workers  {count(config.workers)} processes on that port ({config.workers})")
    if config.admin.listen is not None:
        admin = config.admin.listen
        print(f"admin    {admin.host}:{admin.port} (/metrics, /admin/*; not on listen)")
    print(f"bus      {bus}")
    from relay import telemetry

    endpoint = telemetry.otlp_endpoint(config.telemetry)
    print(f"tracing  {'OTLP/HTTP to ' + telemetry.shown(endpoint) if endpoint else 'off'}")
    print(
        f"topics   events={config.topics.events} raw={config.topics.raw} "
        f"deadletter={config.topics.deadletter}"
    )
    print("\nsources")
    for name, source in sorted(config.sources.items()):
        auths = [
            f"{len(source.tokens)} token(s)" if source.tokens else "",
            "hmac signature" if source.signing_secret else "",
            f"cidr {','.join(source.allow_cidrs)}" if source.allow_cidrs else "",
        ]
        auth = ", ".join(c for c in auths if c) or "OPEN (no authentication)"
        takes_kind = PROVIDERS[source.provider].takes_kind
        path = f"/v1/hooks/{name}" + ("/{kind}" if takes_kind else "")
        print(f"  {name:<16} {source.provider:<9} POST {path:<32} {auth}")
    print(
        f"\nroutes (every matching route publishes; unmatched events go to {config.topics.events})"
    )
    rows = [("ROUTE", "TYPE", "SOURCE", "PROVIDER", "WHERE", "TOPIC")]
    for route in config.routes:
        where = ",".join(f"{k}={v}" for k, v in (route.match.where or {}).items()) or "-"
        rows.append(
            (
                route.name,
                _patterns(route.match.type),
                _patterns(route.match.source),
                _patterns(route.match.provider),
                where,
                route.topic,
            )
        )
    rows.append(("(default)", "*", "*", "*", "-", config.topics.events))
    print_table(rows)
    if config.subscribers:
        print("\nsubscribers (each its own consumer group relay.sub.<name>)")
        subs = [("SUBSCRIBER", "TOPICS", "TYPE", "WHERE", "URL", "SIGNED")]
        for sub in config.subscribers:
            where = ",".join(f"{k}={v}" for k, v in (sub.match.where or {}).items()) or "-"
            subs.append(
                (
                    sub.name,
                    ",".join(sub.topic_list(config.topics.events)),
                    _patterns(sub.match.type),
                    where,
                    without_query(sub.url),
                    "yes" if sub.all_secrets else "no",
                )
            )
        print_table(subs)
        _print_disabled(config)
    if notes:
        print()
        print("\n".join(notes))
    for warning in warnings:
        print(f"relay: warning: {warning}", file=sys.stderr)
    return 1 if warnings and args.strict else 0


def _print_disabled(config: Config) -> None:
    """Subscribers an endpoint disabled with 410 Gone (state kept under data_dir)."""
    from relay.delivery.state import read_only_disabled

    for sub in config.subscribers:
        disabled = read_only_disabled(config.data_path, sub)
        if disabled is not None:
            print(
                f"  DISABLED {sub.name}: its endpoint answered {disabled.status or 410} "
                f"({disabled.reason}); POST /admin/api/subscribers/{sub.name}/enable resumes it"
            )


def _kafka_security(kafka: Kafka) -> str:
    """``SASL_SSL SCRAM-SHA-512 as relay, CA ca.pem`` (never the password)."""
    parts: list[str] = [kafka.security_protocol]
    if kafka.security_protocol.startswith("SASL_"):
        who = f" as {kafka.sasl_plain_username}" if kafka.sasl_plain_username else ""
        parts.append(f"{kafka.sasl_mechanism}{who}")
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        parts.append(f"CA {kafka.ssl_cafile}" if kafka.ssl_cafile else "system CAs")
        if kafka.ssl_certfile:
            parts.append(f"client certificate {kafka.ssl_certfile}")
        if not kafka.ssl_check_hostname:
            parts.append("hostname not checked")
    return ", ".join(parts)
