"""The embedded log: writes read back whole and in order, concurrent writers each get
their answer, retention trims, and two processes opening a new log at once (``--role
ingress`` and ``--role delivery`` started together on one data_dir) both get it: neither
dies on "database is locked"."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from relay.bus import BusError, PublishProbe, Record
from relay.bus.embedded import (
    LOG_FILE,
    EmbeddedLog,
    connect,
    delete_through,
    depth,
    make_private,
    offset_before_last,
    read,
    read_at,
    read_only,
)
from tests.support import assert_durable

ROUNDS = 30  # the race lost about 1 open in 12 before connect() retried it


def _open(path: str, barrier: Barrier, answers: multiprocessing.Queue[str]) -> None:
    barrier.wait()
    try:
        make_private(Path(path))
        connect(Path(path)).close()
        answers.put("ok")
    except Exception as exc:
        answers.put(repr(exc))


def numbered(topic: str, n: int) -> Record:
    return Record(topic=topic, value=f"v{n}".encode(), key=f"k{n}".encode(), headers=(("h", b"x"),))


def test_two_processes_opening_a_new_log_at_once_both_succeed(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    failures = []
    for n in range(ROUNDS):
        path = str(tmp_path / f"round{n}" / "log.sqlite3")
        barrier, answers = context.Barrier(2), context.Queue()
        processes = [context.Process(target=_open, args=(path, barrier, answers)) for _ in "ab"]
        for process in processes:
            process.start()
        for process in processes:
            process.join(30)
        failures += [a for a in (answers.get(timeout=5), answers.get(timeout=5)) if a != "ok"]
    assert failures == []


async def test_records_read_back_whole_in_order_by_topic_and_offset(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path)
    await log.start()
    try:
        await log.publish(
            [
                Record(topic="a", value=b"1", key=b"k", headers=(("h", b"\x00\xff"),)),
                Record(topic="b", value=b"2"),
            ]
        )
        # many requests at once: each is answered once its records are committed
        await asyncio.gather(
            *(log.publish([Record(topic="a", value=b"%d" % n)]) for n in range(3, 9))
        )
    finally:
        await log.close()
    first, second, *rest = read(log.path)
    assert (first.topic, first.value, first.key, first.headers) == (
        "a",
        b"1",
        b"k",
        (("h", b"\x00\xff"),),
    )
    assert (second.topic, second.value, second.key, second.headers) == ("b", b"2", None, ())
    offsets = [r.offset for r in (first, second, *rest)]
    assert offsets == sorted(offsets) and len(set(offsets)) == 8
    assert sorted(r.value for r in rest) == [b"%d" % n for n in range(3, 9)]
    assert [r.value for r in read(log.path, "b")] == [b"2"]
    assert [r.offset for r in read(log.path, after=second.offset, limit=2)] == offsets[2:4]


async def test_retention_drops_only_what_is_older(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path, retention=3600)
    await log.start()
    try:
        await log.publish([Record(topic="a", value=b"old")])
        conn = connect(log.path)
        conn.execute("UPDATE records SET timestamp = timestamp - 7200000")  # two hours ago
        conn.close()
        log.trim_interval = 0.0  # trim at the next commit
        await log.publish([Record(topic="a", value=b"new")])
    finally:
        await log.close()
    assert [r.value for r in read(log.path)] == [b"new"]


def test_connect_opens_wal_with_full_sync(tmp_path: Path) -> None:
    conn = connect(tmp_path / "log.sqlite3")
    try:
        assert_durable(conn)
    finally:
        conn.close()


async def test_the_embedded_logs_writer_syncs_every_commit(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path)
    await log.start()
    try:
        assert log._conn is not None  # the connection its writer thread commits on
        assert_durable(log._conn)
    finally:
        await log.close()


async def test_the_embedded_logs_helpers_read_count_and_delete(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path)
    await log.start()
    try:
        await log.publish([numbered("a", n) for n in range(1, 5)] + [numbered("b", 5)])
    finally:
        await log.close()
    path = tmp_path / LOG_FILE
    assert [i.offset for i in read(path, "a", after=1, limit=2)] == [2, 3]
    assert [i.topic for i in read(path)] == ["a", "a", "a", "a", "b"]
    assert offset_before_last(path, "a", 2) == 2  # the last two of "a" start after offset 2
    assert offset_before_last(path, "a", 10) == 0
    [three, gone] = read_at(path, [3, 99])
    assert three is not None and three.value == b"v3" and gone is None
    count, size = depth(path)
    assert count == 5 and size > 5 * 4
    delete_through(path, 3)
    assert [i.offset for i in read(path)] == [4, 5]
    assert depth(path)[0] == 2


async def test_each_item_carries_its_commits_time_and_a_probe_the_commits_start(
    tmp_path: Path,
) -> None:
    log = EmbeddedLog(tmp_path)
    await log.start()
    try:
        before_ms, began = int(time.time() * 1000), time.monotonic()
        probe = PublishProbe()
        await log.publish([numbered("a", 1)], probe)
        after_ms, answered = int(time.time() * 1000), time.monotonic()
    finally:
        await log.close()
    [one] = read(log.path)
    assert before_ms <= one.timestamp_ms <= after_ms
    assert probe.sent_at is not None and began <= probe.sent_at <= answered


async def test_a_failed_commit_fails_every_request_in_it_and_keeps_none_of_it(
    tmp_path: Path,
) -> None:
    log = EmbeddedLog(tmp_path)
    await log.start()
    try:
        async with asyncio.timeout(5):  # a writer thread that died would never answer
            bad = Record(topic="a", value=None)  # type: ignore[arg-type]  # NOT NULL
            with pytest.raises(BusError, match=r"^embedded log write failed: NOT NULL constraint"):
                await log.publish([numbered("a", 1), bad])
            assert read(log.path) == []  # rolled back whole
            await log.publish([numbered("a", 2)])  # the writer goes on
    finally:
        await log.close()
    assert [i.value for i in read(log.path)] == [b"v2"]


async def test_retention_trims_at_most_once_per_interval(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path, retention=3600)
    await log.start()
    try:
        await log.publish([Record(topic="a", value=b"old")])  # the first commit trims...
        await log.publish([Record(topic="a", value=b"next")])  # ...before this one commits
        conn = connect(log.path)
        conn.execute("UPDATE records SET timestamp = timestamp - 7200000")
        conn.close()
        await log.publish([Record(topic="a", value=b"new")])  # within the minute: no trim
    finally:
        await log.close()
    assert [r.value for r in read(log.path)] == [b"old", b"next", b"new"]


async def test_read_returns_at_most_a_thousand_and_read_only_can_serve_threads(
    tmp_path: Path,
) -> None:
    log = EmbeddedLog(tmp_path)
    await log.start()
    try:
        await log.publish([Record(topic="a", value=b"%d" % n) for n in range(1001)])
    finally:
        await log.close()
    assert len(read(log.path)) == 1000
    shared = read_only(log.path, threads=True)
    try:  # a subscription's connection is used from asyncio.to_thread's workers
        count = await asyncio.to_thread(lambda: shared.execute("SELECT COUNT(*) FROM records"))
        assert count.fetchone() == (1001,)
    finally:
        shared.close()
