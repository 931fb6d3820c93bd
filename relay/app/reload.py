"""Hot reload: sources, routes and subscribers change without a restart or a dropped request.

Triggered by SIGHUP or ``POST /admin/reload``. The new file is validated first; an invalid
one is refused and the running configuration stays. Settings that need new sockets, a new
bus or a new process (listen, data_dir, kafka, topics, shutdown_grace, telemetry) are refused
too, with the reason. Everything else (sources, routes, subscribers, limits, dedupe, logging,
the admin token) takes effect at once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import structlog

from relay.admin.keys import Reloaded, ReloadRefused
from relay.config import Config, ConfigError, load
from relay.delivery.service import DeliveryService
from relay.hardening import insecure_listen
from relay.ingress.state import IngressSettings, live_for
from relay.live import Current
from relay.logs import configure

log = structlog.get_logger("relay.reload")

RESTART_ONLY = (
    "listen",
    "data_dir",
    "kafka",
    "topics",
    "shutdown_grace",
    "workers",
    "telemetry",
)


@dataclass
class Reloader:
    """What a reload reads (``config``, ``path``) and what it changes: the live settings
    (``current``, shared by the ingress, the pipeline and the connection guard) and
    the delivery workers."""

    config: Config
    path: Path | None
    current: Current[IngressSettings]
    delivery: DeliveryService | None
    listen_host: str | None = field(default=None, init=False)
    """Where ``relay serve`` listens: a reload with guessable secrets is refused there."""
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    async def reload(self) -> Reloaded:
        if self.path is None:
            raise ReloadRefused("relay was not started from a configuration file")
        async with self._lock:
            try:
                new = await asyncio.to_thread(load, self.path)
            except ConfigError as exc:
                log.warning("reload_refused", error=str(exc))
                raise ReloadRefused(str(exc)) from None
            changed = [f for f in RESTART_ONLY if getattr(new, f) != getattr(self.config, f)]
            if new.admin.listen != self.config.admin.listen:
                changed.append("admin.listen")
            if changed:
                message = f"changing {', '.join(changed)} needs a restart; nothing was reloaded"
                log.warning("reload_refused", error=message)
                raise ReloadRefused(message)
            if self.listen_host is not None and (refusal := insecure_listen(new, self.listen_host)):
                log.warning("reload_refused", error=refusal)
                raise ReloadRefused(refusal)
            # One assignment: a request sees the old settings or the new ones, whole.
            self.current.live = live_for(new)
            if new.logging != self.config.logging:
                configure(new.logging.level, new.logging.format)
            # Subscribers are not live settings: each worker is stopped, started or kept
            # (awaiting its in-flight deliveries), one by one.
            if self.delivery is not None:
                await self.delivery.reconcile(new, grace=min(5.0, new.shutdown_grace))
            self.config = new
            result = Reloaded(
                sources=sorted(new.sources),
                routes=[r.name for r in new.routes],
                subscribers=[s.name for s in new.subscribers],
            )
            log.info("reloaded", **msgspec.structs.asdict(result))
            return result
