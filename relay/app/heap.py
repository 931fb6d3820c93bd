"""The garbage collector's settings for a serving process.

Reference counting frees almost everything a request allocates; the cyclic collector only
has to find the rare cycle. With CPython's defaults (a young collection every 700 net
allocations) it ran ~50 times a second under load and took ~13% of a request's CPU, and
each full collection walked every object made at start-up (~60,000: modules, the config,
the app) for ~50 ms, a pause every request in flight waited out. So, once serving:

- what start-up made is frozen (``gc.freeze()``): never scanned again, never freed;
- a young collection runs every :data:`YOUNG_THRESHOLD` net allocations instead of 700
  (cycles still go, a few thousand allocations later; the older generations' ratios stay).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000


def settle() -> None:
    """Call once the process is set up and about to serve."""
    gc.collect()  # what start-up left as garbage goes now, not frozen for good
    gc.freeze()
    young, middle, old = gc.get_threshold()
    if young:  # 0: collection turned off by whoever embeds relay; leave it so
        gc.set_threshold(max(young, YOUNG_THRESHOLD), middle, old)
