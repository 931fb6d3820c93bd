"""The garbage collector's settings for a serving process.

Reference counting frees almost everything a request allocates; the cyclic collector only
has to find the rare cycle. With CPython's defaults (a young collection every 700 net
allocations) it ran ~50 times a second under load and took ~13% of a request's CPU, and
each full collection walked every object made at start-up (~60,000: modules, the config,
the app) for ~50 ms, a pause every request in flight waited out. So, once serving:

- what start-up made is frozen (``gc.freeze()``): never scanned again, never freed;
- a young collection runs every :data:`YOUNG_THRESHOLD` net allocations instead of 700
  (cycles still go, a few thousand allocations later; the older generations' ratios stay);
- on glibc, freed memory is kept for reuse (:func:`keep_freed_memory`).
"""

from __future__ import annotations

import ctypes
import gc
import os
import platform

YOUNG_THRESHOLD = 10_000


MMAP_THRESHOLD = 4 * 1024 * 1024
"""Allocations below this come from the heap, not a fresh ``mmap`` of their own."""
TRIM_THRESHOLD = 32 * 1024 * 1024
"""Free memory at the top of the heap kept, not handed back to the kernel, up to this."""
_M_TRIM_THRESHOLD = -1  # glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_OPERATORS_OWN = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep freed memory for the next allocation; True if it was set.

    The Kafka path allocates and frees buffers of 100 KB to a few MB a produce request (the
    batch, the request as aiokafka encodes it, copied a few times). With glibc's defaults
    each of those is a fresh ``mmap`` or lands at the top of the heap and is trimmed back on
    free, so every one is paid again in page faults and zeroed pages: ~35,000 faults a
    second and a fifth of the bus's CPU in the kernel (bench/README.md). Kept, they are
    reused. The cost: up to :data:`TRIM_THRESHOLD` of freed memory stays in the process's
    RSS. Not on other C libraries (musl, macOS), and not when the operator set glibc's own
    ``MALLOC_*`` variables or malloc tunables: theirs win.
    """
    if platform.libc_ver()[0] != "glibc":
        return False
    if any(name in os.environ for name in _OPERATORS_OWN) or "glibc.malloc" in os.environ.get(
        "GLIBC_TUNABLES", ""
    ):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(
        mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


def settle() -> None:
    """Call once the process is set up and about to serve."""
    keep_freed_memory()
    gc.collect()  # what start-up left as garbage goes now, not frozen for good
    gc.freeze()
    young, middle, old = gc.get_threshold()
    if young:  # 0: collection turned off by whoever embeds relay; leave it so
        gc.set_threshold(max(young, YOUNG_THRESHOLD), middle, old)
