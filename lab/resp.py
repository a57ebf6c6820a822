"""The few questions observing a lab asks a node (INFO, ROLE, SENTINEL ..., PING), over one socket in RESP2:
AUTH with a password or an ACL user, TLS through the ssl module, a timeout on every connect, read and write.

Not redis-py: ``lab status`` is polled by drills and scripts, and ``import redis`` alone (redis-py imports
asyncio and more) took longer than the whole status needs. Commands that change a lab keep redis-py
(:func:`lab.topology.node_client`). A failure is a :class:`RespError` whose :attr:`~RespError.kind` and text
are what redis-py says for it ("ConnectionError: Error 111 connecting to ...", "AuthenticationError: ..."),
so what ``lab status`` reports about a node did not change with the client.

A node is not trusted to answer well: one exchange (the commands sent, every reply read) has ``timeout`` in all,
not per read; a reply is at most :data:`MAX_REPLY` bytes and :data:`MAX_DEPTH` arrays deep; a malformed reply
(a bad length or number, an unknown type byte) is a :class:`RespError` of kind ``InvalidResponse``, as hiredis
words it, never another exception."""

from __future__ import annotations

import functools
import os
import socket
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    import ssl

#: A decoded reply: a status or bulk string, an integer, nil, or an array of replies.
Reply: TypeAlias = "str | int | list[Reply] | None"

#: The most one exchange may read: INFO and SENTINEL replies are a few kB; more is a node not speaking RESP.
MAX_REPLY = 8 * 1024 * 1024
#: The deepest nesting of arrays read (the lab's replies nest 2 deep).
MAX_DEPTH = 32

#: Error codes redis-py names its own way (its parser's table); an ERR reply with one of these messages too.
#: Any other code is a ResponseError with the whole text, as redis-py words it.
KINDS = {
    "WRONGPASS": "AuthenticationError",
    "NOAUTH": "AuthenticationError",
    "NOPERM": "NoPermissionError",
    "LOADING": "BusyLoadingError",
    "READONLY": "ReadOnlyError",
    "MASTERDOWN": "MasterDownError",
    "OOM": "OutOfMemoryError",
    "EXECABORT": "ExecAbortError",
    "NOSCRIPT": "NoScriptError",
    "TRYAGAIN": "TryAgainError",
    "ERR": "ResponseError",
}
ERR_KINDS = {
    "invalid password": "AuthenticationError",
    "Client sent AUTH, but no password is set": "AuthenticationError",
    "AUTH <password> called without any password configured for the default user. Are you sure your "
    "configuration is correct?": "AuthenticationError",
    "wrong number of arguments for 'auth' command": "AuthenticationWrongNumberOfArgsError",
    "wrong number of arguments for 'AUTH' command": "AuthenticationWrongNumberOfArgsError",
    "max number of clients reached": "MaxClientsReachedError",
}


class RespError(Exception):
    """No answer, or an error reply. ``kind``: the name of redis-py's exception for the same failure."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class ReplyError(RespError):
    """The node answered with an error (``-ERR ...``, ``-NOQUORUM ...``)."""


def reply_error(line: str) -> ReplyError:
    """An error reply as redis-py words it: a code it knows is cut off (``WRONGPASS x`` -> ``x``), any other
    (``NOQUORUM ...``) stays in the text."""
    code, _, rest = line.partition(" ")
    if code not in KINDS:
        return ReplyError("ResponseError", line)
    return ReplyError(ERR_KINDS.get(rest, "ResponseError") if code == "ERR" else KINDS[code], rest)


def encode(args: Sequence[str]) -> bytes:
    """A command as a RESP array of bulk strings."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def tls_context(ca: str, cert: str | None = None, key: str | None = None) -> ssl.SSLContext:
    """A client context that checks the server's certificate against ``ca`` (and its address, as redis-py
    does) and presents ``cert``/``key``: made once per process until one of the files changes."""
    files = [path for path in (ca, cert, key) if path]
    try:
        stamp = tuple((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns) for st in map(os.stat, files))
    except OSError:
        stamp = ()
    return _context(ca, cert, key, stamp)


@functools.lru_cache(maxsize=16)
def _context(ca: str, cert: str | None, key: str | None, _stamp: tuple[tuple[int, ...], ...]) -> ssl.SSLContext:
    import ssl

    context = ssl.create_default_context(cafile=ca)
    if cert:
        context.load_cert_chain(cert, key)
    return context


class Connection:
    """One connection to one node; a context manager that closes it. ``tls``: the lab's TLS client options
    (:meth:`lab.spec.LabSpec.tls_kwargs`: ``ssl_ca_certs``, ``ssl_certfile``, ``ssl_keyfile``), or none."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 2.0,
        tls: dict[str, Any] | None = None,
    ) -> None:
        self.where = f"{host}:{port}"
        self._sock: socket.socket | None = None
        # What was received and not yet parsed: self._buffer[self._start:]. A bytearray grown in place and
        # trimmed only once half of it is parsed: reading a reply is linear in its size.
        self._buffer = bytearray()
        self._start = 0
        self._timeout = timeout
        self._deadline = 0.0
        self._received = 0
        try:
            # The address as bytes (getaddrinfo takes them): a str loads the IDNA codec, ~10 ms, to resolve it.
            address = (host.encode() if host.isascii() else host, port)
            sock = socket.create_connection(address, timeout=timeout)  # type: ignore[arg-type]
        except TimeoutError:
            raise RespError("TimeoutError", "Timeout connecting to server") from None
        except OSError as exc:
            raise RespError("ConnectionError", self._connect_error(exc)) from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls:
                context = tls_context(tls["ssl_ca_certs"], tls.get("ssl_certfile"), tls.get("ssl_keyfile"))
                sock = context.wrap_socket(sock, server_hostname=host)
        except TimeoutError:
            sock.close()
            raise RespError("TimeoutError", "Timeout connecting to server") from None
        except OSError as exc:
            sock.close()
            raise RespError("ConnectionError", self._connect_error(exc)) from None
        self._sock = sock
        self._auth = ["AUTH", *([username] if username else []), password] if password else None

    def _connect_error(self, exc: OSError) -> str:
        if not exc.args:
            return f"Error connecting to {self.where}."
        if len(exc.args) == 1:
            return f"Error {exc.args[0]} connecting to {self.where}."
        return f"Error {exc.args[0]} connecting to {self.where}. {exc.args[1]}."

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def pipeline(self, *commands: Sequence[str]) -> list[Reply | ReplyError]:
        """Send ``commands`` at once (after AUTH, when the connection has not logged in yet) and read every
        reply: one round trip. An error reply is returned in its place; a failed AUTH is raised."""
        sent = [self._auth, *commands] if self._auth else list(commands)
        self._deadline = time.monotonic() + self._timeout
        self._received = 0
        self._send(b"".join(encode(c) for c in sent))
        replies = [self._read() for _ in sent]
        if self._auth:
            self._auth = None
            if isinstance(replies[0], ReplyError):
                raise replies[0]
            replies = replies[1:]
        return replies

    def command(self, *args: str) -> Reply:
        """One command's reply; an error reply is raised."""
        (reply,) = self.pipeline(args)
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    def _left(self) -> float:
        """What remains of the exchange's time: the socket's timeout for its next send or read."""
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return left

    def _send(self, data: bytes) -> None:
        assert self._sock is not None, "closed"
        try:
            self._sock.settimeout(self._left())
            self._sock.sendall(data)  # the timeout bounds the whole sendall (Python 3.5+)
        except TimeoutError:
            raise RespError("TimeoutError", "Timeout writing to socket") from None
        except OSError as exc:
            raise RespError("ConnectionError", f"Error {exc.errno} while writing to socket. {exc.strerror}.") from None

    def _line(self) -> bytes:
        seen = 0  # how far past self._start no CRLF was found (a CR may end what came so far)
        while (end := self._buffer.find(b"\r\n", self._start + seen)) < 0:
            seen = max(0, len(self._buffer) - self._start - 1)
            self._fill()
        line = bytes(self._buffer[self._start : end])
        self._start = end + 2
        return line

    def _exactly(self, size: int) -> bytes:
        while len(self._buffer) - self._start < size + 2:
            self._fill()
        data = bytes(self._buffer[self._start : self._start + size])
        self._start += size + 2
        return data

    def _fill(self) -> None:
        assert self._sock is not None, "closed"
        if self._received > MAX_REPLY:
            raise _protocol(f"reply over {MAX_REPLY} bytes")
        if self._start and self._start * 2 >= len(self._buffer):
            del self._buffer[: self._start]
            self._start = 0
        try:
            self._sock.settimeout(self._left())
            chunk = self._sock.recv(65536)
        except TimeoutError:
            raise RespError("TimeoutError", f"Timeout reading from {self.where}") from None
        except OSError as exc:
            raise RespError("ConnectionError", f"Error while reading from {self.where} : {exc.args}") from None
        if not chunk:
            raise RespError("ConnectionError", "Connection closed by server.")
        self._received += len(chunk)
        self._buffer += chunk

    def _read(self, depth: int = 0) -> Reply | ReplyError:
        line = self._line()
        kind, rest = line[:1], line[1:].decode(errors="replace")
        if kind == b"+":
            return rest
        if kind == b"-":
            return reply_error(rest)
        if kind == b":":
            return _number(rest, "bad integer value")
        if kind == b"$":
            size = _number(rest, "bad bulk string length")
            if size < -1 or size > MAX_REPLY:
                raise _protocol(f"bulk string length out of range: {size}")
            return None if size < 0 else self._exactly(size).decode(errors="replace")
        if kind == b"*":
            size = _number(rest, "bad multi-bulk length")
            if size < -1 or size > MAX_REPLY:
                raise _protocol(f"multi-bulk length out of range: {size}")
            if size < 0:
                return None
            if depth >= MAX_DEPTH:
                raise _protocol(f"replies nested deeper than {MAX_DEPTH}")
            items: list[Reply] = []
            for _ in range(size):
                item = self._read(depth + 1)
                if isinstance(item, ReplyError):
                    raise item
                items.append(item)
            return items
        got = kind.decode(errors="replace")
        raise RespError("InvalidResponse", f'Protocol error, got "{got}" as reply type byte')


def _protocol(what: str) -> RespError:
    """A reply that is not RESP, worded as hiredis words its protocol errors (``Protocol error, got "H" ...``)."""
    return RespError("InvalidResponse", f"Protocol error, {what}")


def _number(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise _protocol(f"{what}: {text[:40]!r}") from None


def pairs(reply: Reply) -> dict[str, str]:
    """A flat ``[key, value, ...]`` reply (SENTINEL MASTER, each entry of SENTINEL SLAVES) as a dict."""
    if not isinstance(reply, list):
        raise RespError("ResponseError", f"expected an array, got {str(reply)[:80]!r}")
    if len(reply) % 2:
        raise _protocol(f"an array of {len(reply)} items where key-value pairs were expected")
    return {str(k): str(v) for k, v in zip(reply[::2], reply[1::2], strict=True)}


def parse_info(text: str) -> dict[str, str]:
    """INFO's ``key:value`` lines (sections and comments left out)."""
    fields = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition(":")
            fields[key] = value
    return fields


def fields(value: str) -> dict[str, str]:
    """An INFO value of the form ``a=1,b=2`` (``slave0:ip=...,state=online,...``) as a dict."""
    return dict(part.partition("=")[::2] for part in value.split(","))
