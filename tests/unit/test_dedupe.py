from __future__ import annotations

import asyncio
from typing import Any

import pytest

from relay.dedupe import Deduplicator
from relay.live import Live
from tests.factories import live_settings

WINDOW = live_settings(dedupe_window=600).live


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_an_id_published_within_the_window_is_a_duplicate() -> None:
    clock = Clock()
    dedupe = Deduplicator(clock)
    first = await dedupe.claim(["a", "b"], WINDOW)
    assert (first.mine, first.duplicates) == (["a", "b"], set())
    first.finish(published=True)
    again = await dedupe.claim(["a", "c"], WINDOW)
    assert (again.mine, again.duplicates) == (["c"], {"a"})
    again.finish(published=True)
    clock.now += 599
    assert (await dedupe.claim(["b"], WINDOW)).duplicates == {"b"}  # still within the window
    clock.now += 1200
    later = await dedupe.claim(["a"], WINDOW)
    assert later.mine == ["a"]  # long past the window (ids live one to two windows)


async def test_a_failed_publish_is_not_remembered() -> None:
    dedupe = Deduplicator()
    first = await dedupe.claim(["a"], WINDOW)
    first.finish(published=False)
    second = await dedupe.claim(["a"], WINDOW)
    assert second.mine == ["a"]


async def test_a_concurrent_copy_waits_for_the_first_outcome() -> None:
    dedupe = Deduplicator()
    first = await dedupe.claim(["a"], WINDOW)
    waiting = asyncio.create_task(dedupe.claim(["a"], WINDOW))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    first.finish(published=True)
    second = await waiting
    assert second.duplicates == {"a"} and second.mine == []


async def test_a_concurrent_copy_publishes_when_the_first_failed() -> None:
    dedupe = Deduplicator()
    first = await dedupe.claim(["a"], WINDOW)
    waiting = asyncio.create_task(dedupe.claim(["a"], WINDOW))
    await asyncio.sleep(0.01)
    first.finish(published=False)
    second = await waiting
    assert second.duplicates == set()  # it must publish the event itself


async def test_an_id_settled_while_waiting_on_another_is_still_a_duplicate() -> None:
    """A body with two ids both being published by other copies: the second copy finishes
    while this claim waits on the first, and must still count as a duplicate."""
    dedupe = Deduplicator()
    holds_a = await dedupe.claim(["a"], WINDOW)
    holds_b = await dedupe.claim(["b"], WINDOW)
    waiting = asyncio.create_task(dedupe.claim(["a", "b"], WINDOW))
    await asyncio.sleep(0.01)
    holds_b.finish(published=True)
    await asyncio.sleep(0.01)
    holds_a.finish(published=True)
    claim = await waiting
    assert claim.duplicates == {"a", "b"} and claim.mine == []


async def test_a_waiter_publishes_what_failed_and_skips_what_was_published() -> None:
    dedupe = Deduplicator()
    holds = await dedupe.claim(["a", "b"], WINDOW)
    waiting = asyncio.create_task(dedupe.claim(["b", "a", "c"], WINDOW))
    await asyncio.sleep(0.01)
    holds._owner._settle(["a"], True, WINDOW)
    holds._owner._settle(["b"], False, WINDOW)
    claim = await waiting
    assert claim.mine == ["c", "b"] and claim.duplicates == {"a"}


async def test_memory_is_bounded() -> None:
    dedupe = Deduplicator()
    bounded = live_settings(dedupe_window=600, dedupe_max_entries=3).live
    for event_id in "abcde":
        (await dedupe.claim([event_id], bounded)).finish(published=True)
    claim = await dedupe.claim(["a", "e"], bounded)
    assert claim.mine == ["a"] and claim.duplicates == {"e"}  # oldest forgotten first


async def test_the_window_and_the_bound_are_the_claims_own() -> None:
    """Each claim brings its settings (a request's snapshot): a reload that shortens the
    window or the bound counts from the next claim on."""
    clock = Clock()
    dedupe = Deduplicator(clock)
    (await dedupe.claim(["a"], WINDOW)).finish(published=True)
    clock.now += 130
    assert (await dedupe.claim(["a"], WINDOW)).duplicates == {"a"}
    shorter = live_settings(dedupe_window=60).live
    assert (await dedupe.claim(["a"], shorter)).mine == ["a"]  # two of its windows old


async def test_an_id_twice_in_one_body_does_not_wait_on_itself() -> None:
    dedupe = Deduplicator()
    claim = await asyncio.wait_for(dedupe.claim(["m1", "m1"], WINDOW), 1)
    assert claim.mine == ["m1"]
    claim.finish(published=True)


async def test_a_third_copy_after_a_failed_first_publishes_once() -> None:
    dedupe = Deduplicator()
    first = await dedupe.claim(["a"], WINDOW)
    second = asyncio.create_task(dedupe.claim(["a"], WINDOW))
    await asyncio.sleep(0.01)
    first.finish(published=False)
    claim = await second
    assert claim.mine == ["a"]  # it owns the id now
    claim.finish(published=True)
    third = await dedupe.claim(["a"], WINDOW)
    assert third.duplicates == {"a"}


async def test_an_id_is_remembered_for_at_least_the_window() -> None:
    clock = Clock()
    dedupe = Deduplicator(clock)
    for step in range(0, 1200, 50):  # ids published all along, generations turning over
        clock.now = 1000.0 + step
        (await dedupe.claim([f"id-{step}"], WINDOW)).finish(published=True)
        for earlier in range(max(0, step - 550), step + 1, 50):
            assert (await dedupe.claim([f"id-{earlier}"], WINDOW)).duplicates == {f"id-{earlier}"}


async def remembered(dedupe: Deduplicator, ids: list[str], live: Live[Any] = WINDOW) -> list[str]:
    """The ids of ``ids`` the deduplicator still holds (probing remembers nothing new)."""
    claim = await dedupe.claim(ids, live)
    claim.finish(published=False)
    return [i for i in ids if i in claim.duplicates]


async def test_an_id_published_at_a_generation_boundary_lives_a_whole_window() -> None:
    clock = Clock()
    dedupe = Deduplicator(clock)
    (await dedupe.claim(["first"], WINDOW)).finish(published=True)
    clock.now += 600  # exactly one window: a new generation starts now
    (await dedupe.claim(["boundary"], WINDOW)).finish(published=True)
    clock.now += 600  # "boundary" is exactly one window old
    assert await remembered(dedupe, ["first", "boundary"]) == ["boundary"]


async def test_never_more_than_max_entries_and_the_newest_kept() -> None:
    for max_entries in (2, 3, 4, 5, 7, 10):
        dedupe = Deduplicator(Clock())
        bounded = live_settings(dedupe_window=600, dedupe_max_entries=max_entries).live
        published: list[str] = []
        for n in range(3 * max_entries):
            published.append(f"id-{n}")
            (await dedupe.claim([published[-1]], bounded)).finish(published=True)
            # the memory bound itself, between requests (a probe would rotate first)
            assert len(dedupe._current) + len(dedupe._previous) <= max_entries
            held = await remembered(dedupe, published, bounded)
            assert len(held) <= max_entries, (max_entries, held)
            newest = published[-max(1, max_entries // 2) :]
            assert held[-len(newest) :] == newest, (max_entries, held)


async def test_a_third_copy_follows_the_second_that_took_over_from_a_failed_first() -> None:
    dedupe = Deduplicator()
    first = await dedupe.claim(["a"], WINDOW)
    second = asyncio.create_task(dedupe.claim(["a"], WINDOW))
    third = asyncio.create_task(dedupe.claim(["a"], WINDOW))
    await asyncio.sleep(0.01)
    first.finish(published=False)  # the second takes the id over; the third waits on it
    taken = await asyncio.wait_for(second, 1)
    assert taken.mine == ["a"]
    await asyncio.sleep(0.01)
    assert not third.done()  # still waiting for the second's outcome
    taken.finish(published=True)
    follower = await asyncio.wait_for(third, 1)
    assert (follower.mine, follower.duplicates) == ([], {"a"})


async def test_when_every_earlier_copy_fails_the_last_one_publishes() -> None:
    dedupe = Deduplicator()
    first = await dedupe.claim(["a"], WINDOW)
    second = asyncio.create_task(dedupe.claim(["a"], WINDOW))
    third = asyncio.create_task(dedupe.claim(["a"], WINDOW))
    await asyncio.sleep(0.01)
    first.finish(published=False)
    (await asyncio.wait_for(second, 1)).finish(published=False)
    last = await asyncio.wait_for(third, 1)
    assert (last.mine, last.duplicates) == (["a"], set())


async def test_a_claim_cancelled_while_waiting_lets_go_of_its_own_ids() -> None:
    dedupe = Deduplicator()
    first = await dedupe.claim(["a"], WINDOW)
    waiting = asyncio.create_task(dedupe.claim(["b", "a"], WINDOW))  # owns "b", waits on "a"
    await asyncio.sleep(0.01)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    # "b" was never published: the next copy owns it at once instead of waiting forever
    again = await asyncio.wait_for(dedupe.claim(["b"], WINDOW), 1)
    assert again.mine == ["b"]
    first.finish(published=True)
    assert (await dedupe.claim(["a"], WINDOW)).duplicates == {"a"}


async def test_an_id_is_forgotten_at_exactly_two_windows_of_quiet() -> None:
    for quiet, held in ((1199.5, ["x"]), (1200.0, [])):
        clock = Clock()
        dedupe = Deduplicator(clock)
        (await dedupe.claim(["x"], WINDOW)).finish(published=True)
        clock.now += quiet  # no request at all meanwhile: the generation never turned
        assert await remembered(dedupe, ["x"]) == held, quiet
