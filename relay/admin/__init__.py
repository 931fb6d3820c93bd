"""The admin side: ``/admin/reload``, the JSON admin API, and what it and the console do.

- :mod:`relay.admin.api`: the endpoints (:data:`~relay.admin.api.ROUTES`), behind the token
- :mod:`relay.admin.ops`: the operations both the API and the console call
- :mod:`relay.admin.keys`: the AppKeys relay.app fills in (config, reload, operations)
"""

from relay.admin.api import ROUTES
from relay.admin.keys import CONFIG, OPS, RELOAD, Reloaded, ReloadRefused
from relay.admin.ops import Operations

__all__ = ["CONFIG", "OPS", "RELOAD", "ROUTES", "Operations", "ReloadRefused", "Reloaded"]
