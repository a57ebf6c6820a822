"""lab.resp against a scripted server on loopback: replies split across reads, every reply type, error replies
named and worded as redis-py names them, and what a refused, closed or silent connection says. The same client
against real servers of every build, TLS and ACL labs: tests/integration/test_resp.py."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from lab import resp


class Scripted:
    """A one-connection server: reads what the client sends, then writes ``reply`` in ``chunk``-byte pieces
    (or nothing, keeping the connection open, when ``reply`` is None)."""

    def __init__(self, reply: bytes | None, chunk: int = 3) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.received = b""
        self.reply, self.chunk = reply, chunk
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            conn.settimeout(2)
            self.received = conn.recv(65536)
            if self.reply is not None:
                for i in range(0, len(self.reply), self.chunk):
                    conn.sendall(self.reply[i : i + self.chunk])
            self.done.wait(5)

    def close(self) -> None:
        self.done.set()
        self.thread.join(5)
        self.listener.close()


@pytest.fixture
def server() -> Iterator[type[Scripted]]:
    made: list[Scripted] = []

    class Tracked(Scripted):
        def __init__(self, reply: bytes | None, chunk: int = 3) -> None:
            super().__init__(reply, chunk)
            made.append(self)

    yield Tracked
    for one in made:
        one.close()


def test_every_reply_type_split_across_reads(server: type[Scripted]) -> None:
    replies = b"+OK\r\n:42\r\n$5\r\nhe\r\nl\r\n$-1\r\n*2\r\n$1\r\na\r\n*1\r\n:7\r\n*-1\r\n-NOQUORUM 1 usable\r\n"
    srv = server(replies, chunk=2)
    with resp.Connection("127.0.0.1", srv.port, timeout=2) as conn:
        got = conn.pipeline(["PING"], ["INCR", "x"], ["GET", "k"], ["GET", "nil"], ["LRANGE"], ["ARR"], ["CK"])
    assert got[:6] == ["OK", 42, "he\r\nl", None, ["a", [7]], None]
    assert isinstance(got[6], resp.ReplyError) and (got[6].kind, str(got[6])) == ("ResponseError", "NOQUORUM 1 usable")
    assert srv.received == b"".join(
        resp.encode(c) for c in (["PING"], ["INCR", "x"], ["GET", "k"], ["GET", "nil"], ["LRANGE"], ["ARR"], ["CK"])
    )


def test_auth_goes_first_and_a_refused_login_is_raised_as_redis_py_names_it(server: type[Scripted]) -> None:
    srv = server(
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n-NOAUTH Authentication required.\r\n"
    )
    conn = resp.Connection("127.0.0.1", srv.port, username="admin", password="pw", timeout=2)
    with conn, pytest.raises(resp.RespError) as refused:
        conn.command("INFO", "replication")
    assert (refused.value.kind, str(refused.value)) == (
        "AuthenticationError",
        "invalid username-password pair or user is disabled.",
    )
    assert srv.received == resp.encode(["AUTH", "admin", "pw"]) + resp.encode(["INFO", "replication"])


@pytest.mark.parametrize(
    ("line", "kind", "text"),
    [
        ("ERR unknown command 'X'", "ResponseError", "unknown command 'X'"),
        ("ERR invalid password", "AuthenticationError", "invalid password"),
        ("NOPERM this user has no permissions", "NoPermissionError", "this user has no permissions"),
        ("LOADING Redis is loading the data", "BusyLoadingError", "Redis is loading the data"),
        ("NOQUORUM 1 usable Sentinels", "ResponseError", "NOQUORUM 1 usable Sentinels"),
    ],
)
def test_error_replies_are_worded_as_redis_py_words_them(line: str, kind: str, text: str) -> None:
    from redis._parsers.base import BaseParser

    error = resp.reply_error(line)
    theirs = BaseParser.parse_error(line)
    assert (error.kind, str(error)) == (kind, text) == (type(theirs).__name__, str(theirs))


def test_a_refused_closed_or_silent_node_says_what_redis_py_says(server: type[Scripted]) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    with pytest.raises(resp.RespError) as refused:
        resp.Connection("127.0.0.1", port, timeout=1)
    assert refused.value.kind == "ConnectionError"
    assert str(refused.value) == f"Error 111 connecting to 127.0.0.1:{port}. Connection refused."

    closed = server(b"+OK\r\n")
    closed.done.set()  # the server answers one reply and closes
    with resp.Connection("127.0.0.1", closed.port, timeout=2) as conn, pytest.raises(resp.RespError) as gone:
        conn.pipeline(["PING"], ["PING"])
    assert (gone.value.kind, str(gone.value)) == ("ConnectionError", "Connection closed by server.")

    silent = server(None)
    with resp.Connection("127.0.0.1", silent.port, timeout=0.2) as conn, pytest.raises(resp.RespError) as late:
        conn.command("PING")
    assert (late.value.kind, str(late.value)) == ("TimeoutError", f"Timeout reading from 127.0.0.1:{silent.port}")


def test_info_and_sentinel_entries_parse() -> None:
    text = "# Replication\r\nrole:master\r\nslave0:ip=127.0.0.2,port=6379,state=online,offset=5,lag=0\r\n\r\n"
    info = resp.parse_info(text)
    assert info["role"] == "master" and resp.fields(info["slave0"])["state"] == "online"
    assert resp.pairs(["ip", "127.0.0.1", "port", "6379", "flags", "s_down,master"]) == {
        "ip": "127.0.0.1",
        "port": "6379",
        "flags": "s_down,master",
    }
    with pytest.raises(resp.RespError):
        resp.pairs("OK")
