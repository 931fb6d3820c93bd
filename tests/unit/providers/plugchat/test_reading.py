"""relay/providers/plugchat/reading.py: ``moment`` is ``as_time``, only faster."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from relay.providers.coerce import as_time
from relay.providers.plugchat.reading import moment

MS = 946_684_800_000  # as_time's first millisecond; its last is 7_258_118_400_000


@given(
    st.one_of(
        st.integers(min_value=MS - 2_000, max_value=MS + 10**12),
        st.integers(min_value=7_258_118_400_000 - 2_000, max_value=7_258_118_400_000 + 2_000),
        st.integers(),
        st.floats(),
        st.text(max_size=30),
        st.none(),
        st.booleans(),
    )
)
@example(1784045777838)
@example(MS)
@example(MS - 1)
@example(7_258_118_400_000)
@example(7_258_118_400_001)
@example(1784052763)
@example(1784045777999)
@example("1784045777838")
def test_moment_is_as_time(value: Any) -> None:
    assert moment(value) == as_time(value)
