"""A hostile node for lab.resp's tests: a loopback server that answers every connection with junk (a malformed
reply, a byte at a time, far too much) instead of RESP. Unit tests point a node of a hand-made spec at it;
tests/integration/test_resp.py puts it in place of a real lab's node."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

#: What the server does with one connection, after the client's first bytes arrived.
Talk = Callable[[socket.socket], None]


def replies(data: bytes) -> Talk:
    """Send ``data`` at once (the client reads it in whatever pieces the kernel makes)."""

    def talk(conn: socket.socket) -> None:
        conn.sendall(data)

    return talk


def drip(first: bytes = b"+", every: float = 0.3, chunk: bytes = b"a") -> Talk:
    """``first``, then ``chunk`` every ``every`` seconds, never a CRLF: each read gets something in time."""

    def talk(conn: socket.socket) -> None:
        conn.sendall(first)
        while True:
            time.sleep(every)
            conn.sendall(chunk)

    return talk


def flood(header: bytes, size: int) -> Talk:
    """``header`` then ``size`` bytes of ``x`` as fast as the client takes them."""

    def talk(conn: socket.socket) -> None:
        conn.sendall(header)
        block = b"x" * 65536
        for _ in range(0, size, len(block)):
            conn.sendall(block)

    return talk


class JunkServer:
    """Listens on ``host:port`` (0: any free port) until closed; every connection gets ``talk``."""

    def __init__(self, talk: Talk, host: str = "127.0.0.1", port: int = 0) -> None:
        self.listener = socket.create_server((host, port))
        self.listener.settimeout(0.1)  # accept() wakes to see close()
        self.host, self.port = host, self.listener.getsockname()[1]
        self.talk = talk
        self.closed = threading.Event()
        self.connections: list[socket.socket] = []
        self.threads: list[threading.Thread] = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections.append(conn)
            serving = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(serving)
            serving.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            conn.recv(65536)
            self.talk(conn)
            self.closed.wait(10)
        except OSError:  # the client gave up and closed (what it should do), or close() cut it off
            return

    def close(self) -> None:
        """Stop listening and cut every connection, and return once the address is free again (a test
        restarts the real node there right after)."""
        self.closed.set()
        self.threads[0].join(5)
        self.listener.close()
        for conn in self.connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self.threads[1:]:
            thread.join(5)
        for conn in self.connections:
            conn.close()

    def __enter__(self) -> JunkServer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
