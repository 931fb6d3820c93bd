"""Request ids: unique within a process, across processes (fork too), shaped like uuid4().hex."""

from __future__ import annotations

import os
import re

from relay.ingress.middleware import RequestIds, _ids

HEX32 = re.compile(r"^[0-9a-f]{32}$")


def test_ids_are_unique_and_shaped_like_a_uuid_hex() -> None:
    ids = RequestIds()
    made = [ids.next() for _ in range(50_000)]
    assert len(set(made)) == len(made)
    assert all(HEX32.match(i) for i in made)


def test_two_processes_never_share_a_prefix() -> None:
    first, second = RequestIds(), RequestIds()
    assert first.next()[:20] != second.next()[:20]


def test_a_forked_child_draws_its_own_prefix() -> None:
    parent = _ids.next()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report one id and leave at once
        os.write(write, _ids.next().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert HEX32.match(child)
    assert child[:20] != parent[:20]
