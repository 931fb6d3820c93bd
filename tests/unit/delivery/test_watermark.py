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
