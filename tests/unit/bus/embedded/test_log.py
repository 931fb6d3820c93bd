"""The embedded log: writes read back whole and in order, concurrent writers each get
their answer, retention trims, and two processes opening a new log at once (``--role
ingress`` and ``--role delivery`` started together on one data_dir) both get it: neither
dies on "database is locked"."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from relay.bus import BusError, PublishProbe, Record
from relay.bus.embedded import (
    LOG_FILE,
    STREAM,
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
from tests.support import assert_durable, poll_until

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


def test_make_private_creates_or_tightens_the_directory_and_the_database_files(
    tmp_path: Path,
) -> None:
    fresh = tmp_path / "new" / "dir" / LOG_FILE
    make_private(fresh)  # parents made, private
    assert fresh.parent.stat().st_mode & 0o777 == 0o700
    assert fresh.stat().st_mode & 0o777 == 0o600
    old = tmp_path / "old"
    old.mkdir(mode=0o755)
    old.chmod(0o755)
    files = [old / LOG_FILE, old / f"{LOG_FILE}-wal", old / f"{LOG_FILE}-shm"]
    for file in files:  # left by an older relay, or made under another umask
        file.write_bytes(b"")
        file.chmod(0o644)
    make_private(old / LOG_FILE)
    assert old.stat().st_mode & 0o777 == 0o700
    assert [file.stat().st_mode & 0o777 for file in files] == [0o600] * 3


async def test_a_log_not_started_or_closed_refuses_to_publish(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path)
    with pytest.raises(BusError, match=r"^the embedded log is not running$"):
        await log.publish([numbered("a", 1)])
    await log.start()
    await log.close()
    with pytest.raises(BusError, match=r"^the embedded log is not running$"):
        await log.publish([numbered("a", 1)])


def _writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "embedded-log"]


async def test_the_writer_is_a_named_daemon_and_close_closes_the_database(tmp_path: Path) -> None:
    before = _writer_threads()
    log = EmbeddedLog(tmp_path)
    await log.start()
    [writer] = [t for t in _writer_threads() if t not in before]
    assert writer.daemon  # a process that exits without close() is not held by it
    await log.publish([numbered("a", 1)])
    await log.close()
    assert not writer.is_alive()
    # the last connection closed checkpoints the WAL into the database and removes it
    assert not (tmp_path / f"{LOG_FILE}-wal").exists()
    await log.close()  # a second close is a no-op
    [one] = read(log.path)
    assert one.stream == STREAM


@contextlib.contextmanager
def writes_held(path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection holding the write lock: the writer's next commit waits on it
    (within the 5 s busy timeout) until the caller commits."""
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        yield blocker
    finally:
        blocker.close()


async def _writer_busy(log: EmbeddedLog, first: Sequence[Record]) -> asyncio.Task[None]:
    """A publish the writer has taken off its queue and is committing (held by a lock)."""
    task = asyncio.create_task(log.publish(first))
    await asyncio.sleep(0)  # the task queues its records
    await poll_until(log._queue.empty, within=10, what="the writer took the first publish")
    return task


async def test_a_group_commit_takes_what_waits_up_to_4096_records(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path)
    await log.start()
    try:
        async with asyncio.timeout(20):  # a writer that stopped would never answer
            with writes_held(log.path) as blocker:
                # a full batch: the writer commits it without looking for more
                first = await _writer_busy(log, [numbered("a", 0)] * 4096)
                probes = [PublishProbe() for _ in range(3)]
                sizes = (4095, 1, 1)  # while the first commit waits
                waiting = [
                    asyncio.create_task(log.publish([numbered("a", n)] * size, probe))
                    for n, (size, probe) in enumerate(zip(sizes, probes, strict=True), 1)
                ]
                await asyncio.sleep(0)
                blocker.execute("COMMIT")
                await first
                await asyncio.gather(*waiting)
    finally:
        await log.close()
    began = [probe.sent_at for probe in probes]
    assert began[0] == began[1] != began[2]  # 4095 + 1 in one commit, the next in its own
    assert len(read(log.path, limit=10_000)) == 4096 + 4097


async def test_a_publish_that_races_close_is_refused_not_left_waiting(tmp_path: Path) -> None:
    log = EmbeddedLog(tmp_path)
    await log.start()
    async with asyncio.timeout(20):
        with writes_held(log.path) as blocker:
            first = await _writer_busy(log, [numbered("a", 1)])
            closing = asyncio.create_task(log.close())
            await asyncio.sleep(0)  # the stop marker is queued
            late = asyncio.create_task(log.publish([numbered("a", 2)]))
            await asyncio.sleep(0)  # queued behind the stop marker
            blocker.execute("COMMIT")
            await first
            with pytest.raises(BusError, match=r"^the embedded log was closed$"):
                await late
            await closing
    assert [i.value for i in read(log.path)] == [b"v1"]


def _held_new_database(path: Path, monkeypatch: pytest.MonkeyPatch) -> sqlite3.Connection:
    """A database another opener holds exclusively, as while it switches the file to WAL;
    the log's opens answered "database is locked" at once, as the loser of that race is
    (not after Python's 5 s default busy wait)."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE other (x)")
    holder.execute("BEGIN EXCLUSIVE")
    opens = sqlite3.connect
    monkeypatch.setattr(
        "relay.bus.embedded.log.sqlite3.connect", lambda *a, **k: opens(*a, timeout=0, **k)
    )
    return holder


def test_connect_opens_again_while_another_opener_holds_a_new_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    holder = _held_new_database(tmp_path / LOG_FILE, monkeypatch)
    waits: list[float] = []

    def wait(seconds: float) -> None:  # the log's pause between tries: the other is done
        waits.append(seconds)
        holder.execute("COMMIT")

    monkeypatch.setattr("relay.bus.embedded.log.time.sleep", wait)
    connect(tmp_path / LOG_FILE).close()
    holder.close()
    assert waits == [0.02]


def test_connect_gives_up_after_a_hundred_tries_and_raises_other_errors_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    holder = _held_new_database(tmp_path / LOG_FILE, monkeypatch)
    waits: list[float] = []
    monkeypatch.setattr("relay.bus.embedded.log.time.sleep", waits.append)
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        connect(tmp_path / LOG_FILE)
    assert len(waits) == 99  # 100 tries
    holder.close()
    waits.clear()
    other = tmp_path / "other.sqlite3"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE records (x)")  # not the log's: its index cannot be made
    conn.close()
    with pytest.raises(sqlite3.OperationalError, match="no such column"):
        connect(other)
    assert waits == []  # not retried


async def test_a_log_never_started_closes(tmp_path: Path) -> None:
    await EmbeddedLog(tmp_path).close()


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a directory away takes root")
def test_make_private_leaves_a_directory_that_is_not_ours_as_it_is(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    theirs.chmod(0o755)
    os.chown(theirs, 12345, 12345)  # another user's data_dir, readable by others
    make_private(theirs / LOG_FILE)
    assert theirs.stat().st_mode & 0o777 == 0o755


def test_a_commit_answered_after_its_event_loop_closed_leaves_the_writer_working(
    tmp_path: Path,
) -> None:
    """A process whose event loop ends while a commit waits (a crash path, a test's loop):
    the writer cannot answer a closed loop, and must go on rather than die in its thread."""
    log = EmbeddedLog(tmp_path)
    died: list[BaseException | None] = []
    hook = threading.excepthook
    threading.excepthook = lambda args: died.append(args.exc_value)
    try:
        with contextlib.ExitStack() as held:

            async def publish_while_writes_are_held() -> None:
                await log.start()
                blocker = held.enter_context(writes_held(log.path))
                await _writer_busy(log, [numbered("a", 1)])
                held.callback(blocker.execute, "COMMIT")  # once the loop has closed

            asyncio.run(publish_while_writes_are_held())
        deadline = time.monotonic() + 10
        while not read(log.path) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [item.value for item in read(log.path)] == [b"v1"]  # committed, answered nowhere
    finally:
        asyncio.run(log.close())  # the stop marker: a writer still working ends cleanly
        threading.excepthook = hook
    assert died == []
