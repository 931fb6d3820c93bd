"""The commit watermark: only offsets below the lowest unfinished record are committed."""

from __future__ import annotations

from relay.delivery.watermark import Watermark


def test_watermark_commits_only_below_the_lowest_unfinished() -> None:
    mark = Watermark()
    stream = ("t", 0)
    for offset in range(10, 15):
        mark.track(stream, offset)
    mark.finish(stream, 12)
    mark.finish(stream, 11)
    assert mark.take_commits() == {}  # 10 is still out
    mark.finish(stream, 10)
    assert mark.take_commits() == {stream: 13}
    assert mark.take_commits() == {}
    assert mark.take_commits(everything=True) == {stream: 13}
    mark.finish(stream, 14)
    assert mark.take_commits() == {}
    mark.finish(stream, 13)
    assert mark.take_commits() == {stream: 15}
    assert mark.outstanding == 0


def test_watermark_streams_are_independent() -> None:
    mark = Watermark()
    a, b = ("t", 0), ("t", 1)
    mark.track(a, 0)
    mark.track(b, 5)
    mark.finish(b, 5)
    assert mark.take_commits() == {b: 6}
    mark.forget(a)
    assert mark.outstanding == 0


def test_a_forgotten_stream_commits_nothing_and_starts_over() -> None:
    mark = Watermark()
    taken, kept = ("events", 0, 1), ("events", 1, 1)
    for stream in (taken, kept):
        mark.track(stream, 10)
        mark.track(stream, 11)
        mark.finish(stream, 11)  # finished out of order: not committable yet
    mark.track(taken, 12)
    mark.track(taken, 13)
    mark.finish(taken, 10)  # taken: 10 and 11 committable, 12 pending
    mark.finish(taken, 13)  # 13 finished out of order
    mark.forget(taken)
    assert mark.position(taken) is None
    assert mark.take_commits() == {}
    assert mark.take_commits(everything=True) == {}
    # read again from 12 (same stream key, to show nothing of before is left)
    mark.track(taken, 12)
    mark.track(taken, 13)
    mark.finish(taken, 12)
    assert mark.take_commits() == {taken: 13}  # 13 not finished since: not past it
    assert mark.outstanding == 3  # kept: 10 and 11 (10 unfinished); taken: 13


def test_position_and_pending_are_per_stream() -> None:
    mark = Watermark()
    a, b = ("t", 0), ("t", 1)
    assert (mark.position(a), mark.pending(a)) == (None, 0)
    for offset in (3, 4, 5):
        mark.track(a, offset)
    mark.track(b, 9)
    mark.finish(a, 3)
    assert (mark.position(a), mark.pending(a)) == (4, 2)
    assert (mark.position(b), mark.pending(b)) == (None, 1)
    mark.finish(a, 4)
    mark.finish(a, 5)
    assert (mark.position(a), mark.pending(a)) == (6, 0)


def test_forgetting_a_stream_never_seen_is_harmless() -> None:
    mark = Watermark()
    mark.forget(("t", 3))  # a partition revoked before any of its records was read
    assert mark.take_commits(everything=True) == {}


def test_a_finished_offset_is_not_kept_once_the_watermark_passes_it() -> None:
    # memory stays bounded by what is in flight, not by what was ever delivered
    mark = Watermark()
    stream = ("t", 0)
    for offset in range(100):
        mark.track(stream, offset)
        mark.finish(stream, offset)
    assert mark._finished[stream] == set()
    # and an offset read again after a seek back is not taken as finished
    mark.track(stream, 50)
    mark.finish(stream, 51)
    assert (mark.position(stream), mark.pending(stream)) == (100, 1)
