"""Kafka's murmur2 (``org.apache.kafka.common.utils.Utils.murmur2``), faster in pure Python.

aiokafka's version masks and indexes byte by byte (~20 µs for a 36-byte event id); this one
reads the body as 32-bit words with one ``struct.unpack`` and masks only where a product can
overflow 32 bits (about half the time). Same results: tests/unit/bus/test_kafka.py compares
the two under hypothesis.
"""

from __future__ import annotations

import struct

_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_SEED = 0x9747B28C


def murmur2(data: bytes) -> int:
    """The unsigned 32-bit murmur2 hash Kafka's default partitioner uses."""
    length = len(data)
    h = _SEED ^ length
    body = length & ~3
    m, mask = _M, _MASK
    for k in struct.unpack(f"<{body >> 2}I", data[:body]):  # struct caches formats
        k = (k * m) & mask
        k = ((k ^ (k >> 24)) * m) & mask
        h = ((h * m) & mask) ^ k
    tail = length - body
    if tail:
        if tail == 3:
            h ^= data[body + 2] << 16
        if tail >= 2:
            h ^= data[body + 1] << 8
        h = ((h ^ data[body]) * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    return h ^ (h >> 15)
