"""What the admin handlers need from the composition root, as typed AppKeys.

The keys are typed by what the handlers need (a callable, the operations), not by who
provides it: relay.app stores the reloader's method and the Operations under them, so
the admin side does not import the reloader.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec
from aiohttp import web

from relay.admin.ops import Operations
from relay.config import Config


class ReloadRefused(Exception):
    """The new configuration was not taken; the running one stays. The message says why."""


class Reloaded(msgspec.Struct, frozen=True):
    sources: list[str]
    routes: list[str]
    subscribers: list[str]


CONFIG: web.AppKey[Callable[[], Config]] = web.AppKey("config")
"""The configuration in force (the reloaded one after a reload)."""
RELOAD: web.AppKey[Callable[[], Awaitable[Reloaded]]] = web.AppKey("reload")
"""Reload the configuration file; raises ReloadRefused."""
OPS = web.AppKey("operations", Operations)
"""What the admin API and the console do (look up, redrive, replay, enable, disable)."""
