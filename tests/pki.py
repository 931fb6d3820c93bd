"""A throwaway PKI made with openssl: a CA, a server certificate it signed, another CA."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

OPENSSL = shutil.which("openssl")


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path
    other_ca: Path
    """A CA that signed nothing the broker presents: the wrong ssl_cafile."""


def _openssl(*args: str | Path) -> None:
    assert OPENSSL is not None
    subprocess.run([OPENSSL, *map(str, args)], check=True, capture_output=True)


def _self_signed(directory: Path, name: str, subject: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key, "-out", cert, "-days", "1", "-subj", subject,
    )  # fmt: skip
    return cert, key


def make_pki(directory: Path, san: str = "DNS:localhost,IP:127.0.0.1") -> Pki:
    """A CA, a server certificate it signed for ``san``, and an unrelated second CA."""
    ca, ca_key = _self_signed(directory, "ca", "/CN=relay test CA")
    other_ca, _ = _self_signed(directory, "other-ca", "/CN=someone else's CA")
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key, "-out", csr, "-subj", "/CN=kafka",
    )  # fmt: skip
    extensions = directory / "server.ext"
    extensions.write_text(
        f"subjectAltName={san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", cert, "-days", "1", "-extfile", extensions,
    )  # fmt: skip
    return Pki(ca=ca, cert=cert, key=key, other_ca=other_ca)
