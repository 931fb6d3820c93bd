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
    client_cert: Path
    client_key: Path
    """A client certificate the CA signed, for brokers that require one (mTLS)."""


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


def _signed(
    directory: Path, name: str, ca: Path, ca_key: Path, extensions: str
) -> tuple[Path, Path]:
    key, csr, cert = directory / f"{name}.key", directory / f"{name}.csr", directory / f"{name}.pem"
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key, "-out", csr, "-subj", f"/CN={name}",
    )  # fmt: skip
    ext = directory / f"{name}.ext"
    ext.write_text(f"basicConstraints=CA:FALSE\n{extensions}\n")
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", cert, "-days", "1", "-extfile", ext,
    )  # fmt: skip
    return cert, key


def make_pki(directory: Path, san: str = "DNS:localhost,IP:127.0.0.1") -> Pki:
    """A CA, a server certificate it signed for ``san``, a client certificate it signed,
    and an unrelated second CA."""
    ca, ca_key = _self_signed(directory, "ca", "/CN=relay test CA")
    other_ca, _ = _self_signed(directory, "other-ca", "/CN=someone else's CA")
    cert, key = _signed(
        directory, "server", ca, ca_key, f"subjectAltName={san}\nextendedKeyUsage=serverAuth"
    )
    client_cert, client_key = _signed(
        directory, "relay-client", ca, ca_key, "extendedKeyUsage=clientAuth"
    )
    return Pki(
        ca=ca, cert=cert, key=key, other_ca=other_ca, client_cert=client_cert, client_key=client_key
    )
