"""A TLS client's files, checked once before any connection: the first one that is missing, unreadable,
not a regular file or not a PEM of its kind, or a certificate and key that do not go together, named in
a few words (redis-py would report each connection failing, or a Sentinel-wide "no master").

``redis-admin`` and the lab share this; ``check-redis-health`` keeps its own copy (it is one file that
can be copied to a monitoring host alone)."""

from __future__ import annotations

import os
import ssl
import stat
from collections.abc import Sequence
from pathlib import Path

#: What each file must hold.
PEM_MARKER = {
    "CA certificate": b"CERTIFICATE-----",
    "client certificate": b"CERTIFICATE-----",
    "client key": b"PRIVATE KEY-----",
    "server certificate": b"CERTIFICATE-----",
    "server key": b"PRIVATE KEY-----",
}


def file_kind(mode: int) -> str:
    """ "a directory", "a FIFO"...: what a path that should be a regular file is instead."""
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "a device")


def _named(what: str, path: str | Path, hint: str | None) -> str:
    return f"TLS {what} {path}" + (f" ({hint})" if hint else "")


def file_problem(what: str, path: str | Path, hint: str | None = None) -> str | None:
    """Why ``path`` (the ``what``: "CA certificate", "client certificate", "client key") cannot be
    used; None when it is a readable regular file holding a PEM of its kind. ``hint`` names where the
    path came from (a flag, a variable). A FIFO or a device is refused before it is opened for good
    (opened non-blocking, it is never read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return f"{_named(what, path, hint)} is missing"
    except OSError as exc:
        return f"{_named(what, path, hint)} cannot be read ({exc.strerror or exc})"
    try:
        if not stat.S_ISREG(mode := os.fstat(fd).st_mode):
            return f"{_named(what, path, hint)} is not a regular file ({file_kind(mode)})"
        head = os.read(fd, 1 << 20)
    except OSError as exc:
        return f"{_named(what, path, hint)} cannot be read ({exc.strerror or exc})"
    finally:
        os.close(fd)
    if b"-----BEGIN " not in head or PEM_MARKER[what] not in head:
        return f"{_named(what, path, hint)} is not a PEM {what.split()[-1]}"
    return None


def files_problem(
    ca: str | Path | None,
    cert: str | Path | None = None,
    key: str | Path | None = None,
    hints: Sequence[str | None] = (None, None, None),
) -> str | None:
    """The first problem of a client's CA, certificate and key (any may be None), or None."""
    named = zip(("CA certificate", "client certificate", "client key"), (ca, cert, key), hints, strict=True)
    for what, path, hint in named:
        if path and (problem := file_problem(what, path, hint)):
            return problem
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca:
        try:
            context.load_verify_locations(str(ca))
        except ssl.SSLError as exc:
            return f"{_named('CA certificate', ca, hints[0])} cannot be loaded ({exc.reason or exc})"
    if cert and key:
        try:
            context.load_cert_chain(str(cert), str(key))
        except ssl.SSLError as exc:
            why = "they do not match" if exc.reason == "KEY_VALUES_MISMATCH" else (exc.reason or str(exc))
            return f"TLS client certificate {cert} and key {key} cannot be used ({why})"
    return None
