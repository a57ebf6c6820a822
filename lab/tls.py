"""A lab's own certificate authority: one CA per lab, a server certificate for every node's address
and a client certificate, written under ``<lab>/tls/`` (keys 0600). The CA's key is not kept: no
other certificate can be issued in the lab's name once it is up."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lab.errors import LabError
from lab.secretfiles import write_secret

# The file checks (redis_ha_admin.tls_files: the ssl module, ~10 ms) load when a TLS lab's files are checked;
# datetime, ipaddress and cryptography when certificates are made: every `lab` command would pay for them.
if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

TLS_DIR = "tls"
VALID_DAYS = 825  # the longest validity clients accept for a server certificate


@dataclass(frozen=True)
class TlsFiles:
    """Where a lab's TLS files are, as seen from one place (the host, or inside a container)."""

    ca: Path
    cert: Path
    key: Path
    client_cert: Path
    client_key: Path

    @classmethod
    def under(cls, directory: Path) -> TlsFiles:
        return cls(
            ca=directory / "ca.crt",
            cert=directory / "server.crt",
            key=directory / "server.key",
            client_cert=directory / "client.crt",
            client_key=directory / "client.key",
        )


class TlsFileError(LabError):
    """A file a TLS client needs (CA, client certificate or key) is missing, unreadable or wrong:
    said once, naming the file, instead of every node looking down."""


_checked: dict[tuple[str, ...], tuple[tuple[int, int, int], ...]] = {}


def check_client_files(ca: str | Path, cert: str | Path | None = None, key: str | Path | None = None) -> None:
    """Raise :class:`TlsFileError` naming the first of a TLS client's files that is missing,
    unreadable or not what it should be, or a certificate and key that do not belong together
    (:func:`python_utils.tls_files.files_problem`). A set of files that passed is not read again
    until one of them changes."""
    files = [str(path) for path in (ca, cert, key) if path]
    try:
        signature = tuple((st.st_ino, st.st_size, st.st_mtime_ns) for st in map(os.stat, files))
    except OSError:
        signature = ()
    key_of = tuple(files)
    if signature and _checked.get(key_of) == signature:
        return
    from redis_ha_admin.tls_files import files_problem

    if problem := files_problem(ca, cert, key):
        raise TlsFileError(problem)
    _checked[key_of] = signature


def check_server_files(files: TlsFiles) -> None:
    """Raise :class:`TlsFileError` naming the first of the servers' TLS files (CA, certificate, key)
    that a node could not start with: checked before a node is stopped or started, so that a restart
    never turns a running node into one that dies at start ("Failed to configure CA")."""
    from redis_ha_admin.tls_files import file_problem

    for what, path in (("CA certificate", files.ca), ("server certificate", files.cert), ("server key", files.key)):
        if problem := file_problem(what, path):
            raise TlsFileError(f"{problem}: no node was stopped or started")


def _name(common_name: str) -> x509.Name:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "redis-ha-lab"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _pem(cert: x509.Certificate) -> str:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _issue(
    subject: str, issuer: x509.Name, signer: ec.EllipticCurvePrivateKey, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    import datetime

    from cryptography import x509

    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
    )


def issue_lab_certificates(directory: Path, lab_name: str, addresses: list[str]) -> TlsFiles:
    """A CA for ``lab_name``, a server certificate for ``addresses`` (IPs or host names; loopback
    and ``localhost`` are always in it, for healthchecks inside containers) and a client one."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"redis-ha-lab CA for lab {lab_name}")
    ca = (
        _issue(f"redis-ha-lab CA for lab {lab_name}", ca_name, ca_key, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    names: list[x509.GeneralName] = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    for address in dict.fromkeys(addresses):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(address)))
        except ValueError:
            names.append(x509.DNSName(address))
    files = TlsFiles.under(directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    server_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    server = (
        _issue(f"redis-ha-lab {lab_name} nodes", ca_name, ca_key, server_key)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), False)
        .sign(ca_key, hashes.SHA256())
    )
    client = (
        _issue(f"redis-ha-lab {lab_name} client", ca_name, ca_key, client_key)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    # Nodes present the server certificate to each other too (replication, Sentinel): it is both.
    write_secret(files.key, _key_pem(server_key).rstrip("\n"))
    write_secret(files.client_key, _key_pem(client_key).rstrip("\n"))
    for path, cert in ((files.ca, ca), (files.cert, server), (files.client_cert, client)):
        write_secret(path, _pem(cert).rstrip("\n"))
    return files
