"""relay: chat-platform webhooks in, canonical CloudEvents on Kafka, out to HTTP subscribers.

The public Python API (``relay.normalize``, ``relay.decode_event``) lives in
:mod:`relay.api` and is imported on first use, so ``import relay`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from relay.api import decode_event, normalize

__all__ = ["__version__", "decode_event", "normalize"]


def __getattr__(name: str) -> Any:
    if name in ("normalize", "decode_event"):
        from relay import api

        return getattr(api, name)
    raise AttributeError(f"module 'relay' has no attribute {name!r}")
