"""structlog set-up: JSON lines in production, a readable console on a terminal.

relay's own lines go straight through structlog. Libraries (aiohttp, aiokafka) log through
the standard library; their records are rendered by the same structlog processors, so the
stream stays one JSON object a line, with secrets redacted. aiohttp's "Error handling
request" — what any client can trigger with a malformed request line — becomes one
``http_bad_request`` line without a traceback, and at most a few a minute.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from typing import Literal

import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from relay.workers import SLOT_ENV

LogFormat = Literal["auto", "json", "console"]

_REDACTED = "***"
_SECRET_QUERY = re.compile(
    r"(?i)((?:token|api_token|access_token|api_access_token|password|secret)=)[^&\s'\"\\]+"
)
_SECRET_HEADER = re.compile(
    r"(?i)\b((?:authorization|proxy-authorization|x-relay-token|api_access_token)"
    r"['\"]?\s*[:=,]\s*['\"]?(?:(?:bearer|basic|token)\s+)?)[^\s'\",\\]+"
)
_BAD_REQUEST_LIMIT = 5
_BAD_REQUEST_WINDOW = 60.0
_MAX_ERROR = 300


def redact(text: str) -> str:
    """``?token=…``, ``Authorization: …`` and the like with their values replaced by ***."""
    text = _SECRET_QUERY.sub(rf"\g<1>{_REDACTED}", text)
    return _SECRET_HEADER.sub(rf"\g<1>{_REDACTED}", text)


def _redact_strings(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = redact(value)
    return event_dict


def _bad_request(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """aiohttp's per-connection parser errors: one short line, no traceback."""
    record = event_dict.get("_record")
    if record is None or record.name != "aiohttp.server":
        return event_dict
    exc_info = event_dict.pop("exc_info", None)
    exc = exc_info[1] if isinstance(exc_info, tuple) else None
    message = str(event_dict.get("event", ""))
    if message.startswith("Error handling request"):
        event_dict["event"] = "http_bad_request"
        event_dict["level"] = "warning"
        _, found, remote = message.partition(" from ")
        if found:
            event_dict["remote"] = remote
    if exc is not None:
        error = " ".join(f"{type(exc).__name__}: {exc}".split())
        event_dict["error"] = error[:_MAX_ERROR] + ("…" if len(error) > _MAX_ERROR else "")
    return event_dict


class LogBudget:
    """At most ``limit`` lines per ``window`` seconds for something strangers can trigger at
    will. ``take()`` is None when the line is to be dropped, else how many were dropped since
    the last one (to log as ``suppressed``)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._lock = threading.Lock()
        self._started = 0.0
        self._count = 0
        self._suppressed = 0

    def take(self) -> int | None:
        with self._lock:
            now = time.monotonic()
            if now - self._started >= self.window:
                self._started, self._count = now, 0
            if self._count >= self.limit:
                self._suppressed += 1
                return None
            self._count += 1
            dropped, self._suppressed = self._suppressed, 0
            return dropped


class _RateLimit(logging.Filter):
    """A :class:`LogBudget` for a standard-library logger."""

    def __init__(self, limit: int, window: float) -> None:
        super().__init__()
        self.budget = LogBudget(limit, window)

    def filter(self, record: logging.LogRecord) -> bool:
        dropped = self.budget.take()
        if dropped is None:
            return False
        if dropped:
            record.suppressed = dropped
        return True


def _suppressed(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    record = event_dict.get("_record")
    count = getattr(record, "suppressed", None)
    if count:
        event_dict["suppressed"] = count
    return event_dict


_HANDLER_NAME = "relay-structlog"


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record comes, not when it was made."""

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def _worker_slot() -> list[Processor]:
    """Under ``relay serve --workers N``, each line says which worker wrote it."""
    slot = os.environ.get(SLOT_ENV)
    if slot is None:
        return []
    number = int(slot)

    def add(logger: WrappedLogger, method: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("worker", number)
        return event_dict

    return [add]


def configure(level: str = "info", fmt: LogFormat = "auto") -> None:
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: Processor = (
        structlog.dev.ConsoleRenderer() if use_console else structlog.processors.JSONRenderer()
    )
    numeric_level = logging.getLevelNamesMapping()[level.upper()]
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *_worker_slot(),
            structlog.processors.add_log_level,
            timestamper,
            structlog.processors.StackInfoRenderer(),
            *([] if use_console else [structlog.processors.format_exc_info]),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # The standard library's records (aiokafka, aiohttp) through the same renderer.
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            *_worker_slot(),
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            timestamper,
            _bad_request,
            _suppressed,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *([] if use_console else [structlog.processors.format_exc_info]),
            _redact_strings,
            renderer,
        ],
    )
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(handler)
    handler = _Stderr()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root.addHandler(handler)
    # Keep the libraries' warnings and errors, not their chatter; Python's own warnings
    # (a DeprecationWarning from a library, say) come the same way.
    root.setLevel(max(numeric_level, logging.WARNING))
    logging.captureWarnings(True)
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, _RateLimit) for f in server.filters):
        server.addFilter(_RateLimit(_BAD_REQUEST_LIMIT, _BAD_REQUEST_WINDOW))
