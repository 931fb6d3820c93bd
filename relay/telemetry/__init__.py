"""Tracing, decided once at start-up: OpenTelemetry when an OTLP endpoint is set, else nothing.

:func:`start` returns a :class:`~relay.telemetry.otel.Tracing` when ``telemetry.otlp_endpoint``
(or the standard ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_ENDPOINT``) is
set, and None otherwise. With None nothing is imported from OpenTelemetry and the hot paths
take their untraced branch: the hook handler is the plain one, and the pipeline and the
sender each test one attribute for None.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from relay.config import Config, ConfigError, Telemetry

if TYPE_CHECKING:
    from relay.telemetry.otel import Tracing

__all__ = ["ENDPOINT_VARIABLES", "otlp_endpoint", "problem", "shown", "start", "traces_url"]

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_PROTOCOL_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
INSTALL_HINT = "pip install 'relay[otel]'"
_NEEDED = ("opentelemetry.sdk.trace", "opentelemetry.exporter.otlp.proto.http.trace_exporter")


def otlp_endpoint(settings: Telemetry, environ: Mapping[str, str] = os.environ) -> str | None:
    """Where spans go, or None when tracing is off.

    The configuration wins over the environment; ``OTEL_SDK_DISABLED=true`` (the SDK's own
    switch) turns tracing off whatever is set. An empty value (an unset ``${VAR:-}``) is none.
    """
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if settings.otlp_endpoint:
        return settings.otlp_endpoint
    for name in ENDPOINT_VARIABLES:
        if value := environ.get(name, "").strip():
            return value
    return None


def problem(config: Config, environ: Mapping[str, str] = os.environ) -> str | None:
    """Why tracing, asked for, cannot start here (``relay check`` and ``serve`` refuse); or None."""
    if otlp_endpoint(config.telemetry, environ) is None:
        return None
    for name in _PROTOCOL_VARIABLES:
        protocol = environ.get(name, "").strip()
        if protocol and protocol != "http/protobuf":
            return (
                f"{name}={protocol}: relay exports OTLP over HTTP only (http/protobuf, port "
                "4318 on a collector); unset it or set http/protobuf"
            )
    try:
        for module in _NEEDED:
            importlib.import_module(module)
    except ImportError as exc:
        where = (
            "telemetry.otlp_endpoint"
            if config.telemetry.otlp_endpoint
            else next(name for name in ENDPOINT_VARIABLES if environ.get(name, "").strip())
        )
        return (
            f"{where} is set, but the OpenTelemetry SDK is not installed ({exc.name}): "
            f"{INSTALL_HINT}, or unset it to run without tracing"
        )
    return None


def start(config: Config, environ: Mapping[str, str] = os.environ) -> Tracing | None:
    """The process's tracing, exporting to the OTLP endpoint; None (tracing off) without one.

    Raises :class:`~relay.config.ConfigError` when an endpoint is set but tracing cannot run.
    """
    endpoint = otlp_endpoint(config.telemetry, environ)
    if endpoint is None:
        return None
    if (reason := problem(config, environ)) is not None:
        raise ConfigError(reason)
    from relay.telemetry.otel import Tracing

    # from the configuration: a base URL like OTEL_EXPORTER_OTLP_ENDPOINT's; from the
    # environment the exporter reads (and completes) the variables itself
    configured = config.telemetry.otlp_endpoint or None
    return Tracing.exporting(
        traces_url(configured) if configured else None,
        service_name=config.telemetry.service_name or environ.get("OTEL_SERVICE_NAME") or "relay",
    )


def shown(endpoint: str) -> str:
    """An endpoint as logged and printed: no user, password or query (they may be secrets)."""
    parts = urlsplit(endpoint)
    if not parts.scheme or parts.hostname is None:
        return "<an OTLP endpoint>"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


def traces_url(base: str) -> str:
    """``http://collector:4318`` → ``http://collector:4318/v1/traces`` (kept if already so)."""
    base = base.rstrip("/")
    return base if base.endswith("/v1/traces") else f"{base}/v1/traces"
