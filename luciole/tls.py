"""A private certificate authority and the broker's server certificate, made with openssl once."""

from __future__ import annotations

import subprocess
from pathlib import Path

from luciole.broker_config import TlsFiles


class TlsError(RuntimeError):
    """openssl failed; the message carries its output."""


def _openssl(*args: str) -> None:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise TlsError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def ensure_server_certificate(directory: Path, hostnames: list[str], days: int = 825) -> TlsFiles:
    """Create (once) a CA and a server certificate for `hostnames` (DNS names or IP addresses).

    Controllers trust the CA file (`ca.crt`); the CA key stays in `directory` (mode 0600). For
    production, replace these files with certificates from the operator's own PKI.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt = directory / "server.key", directory / "server.csr", directory / "server.crt"
    if ca_crt.exists() and crt.exists() and key.exists():
        return TlsFiles(ca_crt, crt, key)
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(ca_key), "-out", str(ca_crt), "-days", str(days),
             "-subj", "/CN=Luciole local CA")
    san = ",".join(
        (f"IP:{h}" if h.replace(".", "").isdigit() or ":" in h else f"DNS:{h}") for h in hostnames
    )
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={hostnames[0]}")
    ext = directory / "server.ext"
    ext.write_text(f"subjectAltName={san}\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key),
             "-CAcreateserial", "-out", str(crt), "-days", str(days), "-extfile", str(ext))
    for secret in (ca_key, key):
        secret.chmod(0o600)
    csr.unlink(missing_ok=True)
    return TlsFiles(ca_crt, crt, key)
