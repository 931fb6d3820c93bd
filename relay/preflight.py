"""What ``relay serve`` needs from the machine, checked before it starts and by ``relay check``.

Each problem is one line naming the setting and what to do: a compression codec whose
library is not installed (with the extra that brings it), a ``data_dir`` that cannot be
created or written, a listen address that is taken or not on this host, and, with
``relay check --connect``, a broker that cannot be reached or lacks what the
configuration asks for (idempotent producers, topics).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
from pathlib import Path

from relay.config import Config, Kafka

_CODECS_NEEDING_CRAMJAM = ("snappy", "lz4", "zstd")


def libraries(config: Config) -> list[str]:
    """Optional libraries the configuration needs that are not installed."""
    problems: list[str] = []
    kafka = config.kafka
    if kafka is not None and kafka.compression in _CODECS_NEEDING_CRAMJAM:
        from aiokafka import codec

        if not getattr(codec, f"has_{kafka.compression}")():
            problems.append(
                f"kafka.compression: {kafka.compression} needs the cramjam library, which is "
                f"not installed: pip install 'relay[{kafka.compression}]' "
                "(or 'relay[kafka]' for every codec)"
            )
    from relay import telemetry

    if (reason := telemetry.problem(config)) is not None:
        problems.append(reason)
    return problems


def _first_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def data_dir(config: Config) -> list[str]:
    """Whether ``data_dir`` is, or can be made, a writable directory (without creating it)."""
    path = config.data_path.absolute()
    existing = _first_existing(path)
    if not existing.is_dir():
        if existing == path:
            return [f"data_dir: {path} is a file, not a directory"]
        return [f"data_dir: cannot create {path}: {existing} is a file, not a directory"]
    if not os.access(existing, os.W_OK | os.X_OK):
        if existing == path:
            return [f"data_dir: {path} is not writable by this user (uid {os.getuid()})"]
        return [f"data_dir: cannot create {path}: {existing} is not writable"]
    return []


def problems(config: Config) -> list[str]:
    """Everything that would stop ``relay serve`` from starting, short of the network."""
    return libraries(config) + data_dir(config)


# --- the listen address (serve only: a running relay holds its own port) ------------------

_LISTEN_HINTS = {
    errno.EADDRINUSE: "the port is in use (another relay? {flag}change {key}.port)",
    errno.EADDRNOTAVAIL: "no such address on this host (change {key}.host)",
    errno.EACCES: "permission denied (ports below 1024 need privileges)",
}


def listen_problem(exc: OSError, host: str, port: int, key: str = "listen") -> str:
    hint = _LISTEN_HINTS.get(exc.errno or 0)
    flag = "pass --port or " if key == "listen" else ""
    why = hint.format(key=key, flag=flag) if hint else (exc.strerror or str(exc))
    return f"cannot listen on {host}:{port} ({key}): {why}"


def check_listen(host: str, port: int, key: str = "listen") -> str | None:
    """Bind the address once and let it go: a taken port is told before anything starts."""
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        return f"cannot listen on {host}:{port} ({key}): {exc.strerror}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            return listen_problem(exc, host, port, key)
    return None


# --- the broker (relay check --connect) ----------------------------------------------------


def _wanted_topics(config: Config) -> list[str]:
    topics = [config.topics.events, config.topics.raw, config.topics.deadletter]
    topics += [route.topic for route in config.routes]
    for sub in config.subscribers:
        topics += sub.topic_list(config.topics.events)
    return sorted(set(topics))


async def _broker(kafka: Kafka, wanted: list[str]) -> tuple[list[str], list[str]]:
    """(notes, problems) from connecting the way ``serve`` does."""
    from aiokafka.errors import KafkaError

    from relay.bus.base import BusError
    from relay.bus.kafka import KafkaBus
    from relay.bus.kafka.consumer import outside_group

    bus = KafkaBus(kafka)
    try:
        await bus.start()
    except BusError as exc:
        return [], [f"kafka: {exc}"]
    await bus.close()
    notes = [
        f"kafka    reached {','.join(kafka.servers)}; "
        f"producer starts (idempotence {'on' if kafka.idempotence else 'off'}, "
        f"compression {kafka.compression or 'none'})"
    ]
    consumer = outside_group(kafka)
    try:
        await consumer.start()
        existing = await consumer.topics()
    except KafkaError as exc:
        return notes, [f"kafka: cannot list topics: {exc}"]
    finally:
        await consumer.stop()
    missing = [topic for topic in wanted if topic not in existing]
    if missing:
        notes.append(
            f"kafka    topics not on the broker yet: {', '.join(missing)} (created on first "
            "use only if the broker auto-creates topics; see deploy/kubernetes/topics-job.yaml)"
        )
    return notes, []


def broker(config: Config, timeout: float = 30.0) -> tuple[list[str], list[str]]:
    """Connect to the configured Kafka as ``serve`` would: (notes, problems)."""
    if config.kafka is None:
        return ["kafka    not configured: the embedded log is the bus"], []
    kafka = config.kafka

    async def run() -> tuple[list[str], list[str]]:
        try:
            async with asyncio.timeout(timeout):
                return await _broker(kafka, _wanted_topics(config))
        except TimeoutError:
            return [], [f"kafka: no answer from {','.join(kafka.servers)} within {timeout:.0f}s"]

    # aiokafka logs what it meets on the way; the problems found are the one line to show.
    library_log = logging.getLogger("aiokafka")
    level = library_log.level
    library_log.setLevel(logging.CRITICAL)
    try:
        return asyncio.run(run())
    finally:
        library_log.setLevel(level)
