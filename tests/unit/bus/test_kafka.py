"""relay picks the partition any Kafka client would: murmur2 of the key, as aiokafka does."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from relay.bus.kafka.batches import default_partition
from relay.bus.kafka.murmur2 import murmur2


@given(key=st.binary(min_size=0, max_size=64), partitions=st.integers(min_value=1, max_value=64))
def test_matches_aiokafkas_default_partitioner(key: bytes, partitions: int) -> None:
    ids = list(range(partitions))
    assert default_partition(key, partitions) == DefaultPartitioner()(key, ids, ids)


def test_known_values_from_the_java_client() -> None:
    # org.apache.kafka.common.utils.Utils.murmur2 test vectors, via toPositive(h) % n.
    assert default_partition(b"21", 1 << 31) == 0x7FFFFFFF & -973932308
    assert default_partition(b"foobar", 1 << 31) == 0x7FFFFFFF & -790332482
    assert default_partition(b"a-little-bit-long-string", 1 << 31) == 0x7FFFFFFF & -985981536


@given(key=st.binary(min_size=0, max_size=200))
def test_the_fast_hash_is_kafkas_murmur2(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)
