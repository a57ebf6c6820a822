"""A node that does not speak RESP well (a hostile probe's cases): every malformed, endless, oversized or too deep
reply is one problem line for that node, within the observation's deadline, never a traceback or a hang. Also
the wording of flagged replicas and Sentinels, and a lab whose password file is gone."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from lab import resp
from lab.topology import Observation, RedisView, SentinelView, observe, observe_redis, observe_sentinel, problems
from tests.helpers import make_spec
from tests.junk_server import JunkServer, Talk, drip, flood, replies

#: The observation's timeout (lab status's); a call must return within 3 times it (loosely: a busy CI machine).
TIMEOUT = 0.5
BOUND = 3 * TIMEOUT


def bulk(text: str) -> bytes:
    data = text.encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


def array(*items: bytes) -> bytes:
    return b"*%d\r\n" % len(items) + b"".join(items)


def sentinel_master(**fields: str) -> bytes:
    return array(*(bulk(x) for kv in fields.items() for x in kv))


GOOD_MASTER = {"ip": "127.0.0.1", "port": "6379", "flags": "master", "num-slaves": "2", "num-other-sentinels": "2"}
EMPTY = b"*0\r\n"


def one_problem_line_in_time(talk: Talk, kind: str, expected: str, tmp_path: Path) -> None:
    """The first node of ``kind`` (its other nodes refuse) answers through ``talk``: within the bound, one problem
    line names it, with ``expected`` in it."""
    with JunkServer(talk) as junk:
        spec = make_spec(tmp_path, junk.port)
        node = next(n for n in spec.nodes if n.kind == kind)
        started = time.monotonic()
        view = observe_redis(spec, node, TIMEOUT) if kind == "redis" else observe_sentinel(spec, node, TIMEOUT)
        took = time.monotonic() - started
    assert took < BOUND, f"{took:.2f} s"
    assert not view.reachable and expected in view.error, view.error
    obs = Observation([view], []) if isinstance(view, RedisView) else Observation([], [view])
    about = [line for line in problems(spec, obs) if line.startswith(f"{node.name} ")]
    assert len(about) == 1 and about[0].startswith(f"{node.name} unreachable (") and expected in about[0], about


REDIS_JUNK: dict[str, tuple[Talk, str]] = {
    "integer :abc": (replies(b"+OK\r\n:abc\r\n"), "Protocol error, bad integer value: 'abc'"),
    "bulk length $xyz": (replies(b"+OK\r\n$xyz\r\n"), "Protocol error, bad bulk string length: 'xyz'"),
    "bulk length $-5": (replies(b"+OK\r\n$-5\r\n"), "Protocol error, bulk string length out of range: -5"),
    "array length *q": (replies(b"+OK\r\n*q\r\n"), "Protocol error, bad multi-bulk length: 'q'"),
    "master_port:notaport": (
        replies(b"+OK\r\n" + bulk("# Replication\r\nrole:slave\r\nmaster_host:h\r\nmaster_port:notaport\r\n")),
        "Protocol error, INFO master_port is not a number: 'notaport'",
    ),
    "200k nested *1": (replies(b"+OK\r\n" + b"*1\r\n" * 200_000 + b":1\r\n"), "nested deeper than 32"),
    "a byte every 0.3 s": (drip(b"+OK\r\n+"), "TimeoutError: Timeout reading from"),
    "40 MB bulk": (flood(b"+OK\r\n$41943040\r\n", 41943040), "bulk string length out of range: 41943040"),
    "9 MB line": (flood(b"+OK\r\n+", 9_000_000), "Protocol error, reply over 8388608 bytes"),
    "HTTP": (replies(b"HTTP/1.1 400 Bad Request\r\n\r\n"), 'Protocol error, got "H" as reply type byte'),
}


@pytest.mark.parametrize("case", sorted(REDIS_JUNK))
def test_a_data_node_answering_junk_is_one_problem_line_in_time(case: str, tmp_path: Path) -> None:
    talk, expected = REDIS_JUNK[case]
    one_problem_line_in_time(talk, "redis", expected, tmp_path)


SENTINEL_JUNK: dict[str, tuple[bytes, str]] = {
    "odd-length SENTINEL MASTER": (
        array(bulk("ip"), bulk("127.0.0.1"), bulk("port")) + EMPTY + EMPTY + b"+OK\r\n",
        "Protocol error, an array of 3 items where key-value pairs were expected",
    ),
    "SENTINEL MASTER port not a number": (
        sentinel_master(**{**GOOD_MASTER, "port": "x"}) + EMPTY + EMPTY + b"+OK\r\n",
        "Protocol error, SENTINEL MASTER port is not a number: 'x'",
    ),
    "SENTINEL MASTER without flags": (
        sentinel_master(**{k: v for k, v in GOOD_MASTER.items() if k != "flags"}) + EMPTY + EMPTY + b"+OK\r\n",
        "Protocol error, SENTINEL MASTER reply without flags",
    ),
    "a replica entry without flags": (
        sentinel_master(**GOOD_MASTER) + array(sentinel_master(ip="127.0.0.2", port="6379")) + EMPTY + b"+OK\r\n",
        "Protocol error, SENTINEL SLAVES reply without flags",
    ),
    "SENTINEL SLAVES not an array": (
        sentinel_master(**GOOD_MASTER) + b":3\r\n" + EMPTY + b"+OK\r\n",
        "ResponseError: expected a list of entries, got 3",
    ),
}


@pytest.mark.parametrize("case", sorted(SENTINEL_JUNK))
def test_a_sentinel_answering_junk_is_one_problem_line_in_time(case: str, tmp_path: Path) -> None:
    data, expected = SENTINEL_JUNK[case]
    one_problem_line_in_time(replies(b"+OK\r\n" + data), "sentinel", expected, tmp_path)


def test_the_deadline_is_per_exchange_not_per_read() -> None:
    with JunkServer(drip(every=0.05)) as junk, resp.Connection("127.0.0.1", junk.port, timeout=TIMEOUT) as conn:
        started = time.monotonic()
        with pytest.raises(resp.RespError) as late:
            conn.command("PING")
        took = time.monotonic() - started
    assert late.value.kind == "TimeoutError" and TIMEOUT * 0.9 < took < BOUND, took


def test_a_large_reply_under_the_cap_reads_whole_in_pieces() -> None:
    text = "x" * 3_000_000
    with JunkServer(replies(bulk(text) + b":1\r\n")) as junk, resp.Connection("127.0.0.1", junk.port, timeout=10) as c:
        assert c.pipeline(["GET", "k"], ["INCR", "n"]) == [text, 1]


def test_pairs_of_an_odd_length_array_is_a_protocol_error() -> None:
    with pytest.raises(resp.RespError) as odd:
        resp.pairs(["ip", "127.0.0.1", "port"])
    assert odd.value.kind == "InvalidResponse"


def test_flagged_replicas_and_sentinels_are_named_as_what_they_are(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    spec = dataclasses.replace(
        spec, nodes=tuple(dataclasses.replace(n, host=f"127.0.0.{i}", port=6379) for i, n in enumerate(spec.nodes, 1))
    )
    view = SentinelView(
        spec.sentinels[0],
        reachable=True,
        master=("127.0.0.1", 6379),
        master_flags="master",
        num_replicas=2,
        num_other_sentinels=2,
        replica_flags={"127.0.0.2:6379": "s_down,slave,disconnected", "127.0.0.3:6379": "slave"},
        peer_flags={"127.0.0.5:6379": "sentinel,master_down", "127.0.0.6:6379": "s_down,sentinel"},
        ckquorum="OK 3 usable Sentinels",
    )
    found = [line for line in problems(spec, Observation([], [view])) if line.startswith("sentinel-1 ")]
    assert found == [
        "sentinel-1 sees replica redis-2 flagged s_down,slave,disconnected",
        "sentinel-1 sees Sentinel sentinel-3 flagged s_down,sentinel",
    ]


@pytest.mark.parametrize("gone", ["redis", "both"])
def test_a_missing_password_file_is_one_line_naming_it(gone: str, tmp_path: Path) -> None:
    spec = make_spec(tmp_path, password="", sentinel_password=None if gone == "both" else "pw")
    obs = observe(spec, TIMEOUT)
    found = problems(spec, obs)
    missing = [line for line in found if "is missing" in line]
    assert missing[0] == (
        f"{tmp_path / 'redis.pass'} is missing: the lab's password for its redis nodes (redis-1, redis-2, redis-3), "
        "which were not asked"
    )
    if gone == "both":
        assert len(missing) == 2 and missing[1].startswith(f"{tmp_path / 'sentinel.pass'} is missing: ")
    else:
        assert len(missing) == 1
    assert not [line for line in found if line.startswith("redis-") or "Authentication" in line], found
