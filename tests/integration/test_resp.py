"""lab.resp, the client `lab status` and the health waits observe a lab with, against real servers: on every build
(``--lab-server``) it reads what redis-py reads and fails as redis-py fails; over TLS with ACL users too."""

from __future__ import annotations

import json
import time

import pytest
import redis

from lab import faults, resp
from lab.spec import LabSpec, Node
from lab.topology import client, node_client, observe, problems
from tests.helpers import run_lab
from tests.junk_server import JunkServer, Talk, drip, flood, replies

pytestmark = pytest.mark.integration

#: The production profile (ACL users, default user off) with TLS on and the lab's fast timers.
SECURE = {
    "redis": {"tls": {"enabled": True}, "repl_diskless_sync_delay": 0},
    "sentinel": {"down_after_milliseconds": 1000, "failover_timeout": 5000},
    "topology": {"seed_sentinel_discovery": True},
}


def connect(spec: LabSpec, node: Node, password: str | None = None) -> resp.Connection:
    auth = spec.auth(node.kind)
    secret = auth["password"] if password is None else password
    return resp.Connection(node.host, node.port, username=auth["username"], password=secret, tls=spec.tls_kwargs())


def same_failure(ours: resp.RespError, theirs: redis.RedisError) -> None:
    assert (ours.kind, str(ours)) == (type(theirs).__name__, str(theirs))


def check_like_redis_py(spec: LabSpec) -> None:
    """Every node answers lab.resp what it answers redis-py (the volatile numbers aside), and a wrong password
    or an error reply reads the same through both."""
    for node in spec.redis_nodes:
        with connect(spec, node) as conn, node_client(spec, node) as theirs:
            ours = resp.parse_info(str(conn.command("INFO", "replication")))
            info = theirs.info("replication")
            assert set(ours) == set(info), node.name
            for key in ("role", "master_host", "master_port", "master_link_status", "connected_slaves"):
                assert ours.get(key) == (str(info[key]) if key in info else None), (node.name, key)
            for key in (k for k in ours if k.startswith("slave") and k[5:].isdigit()):
                assert resp.fields(ours[key])["state"] == info[key]["state"]
            with pytest.raises(resp.RespError) as refused:
                conn.command("NOSUCHCOMMAND", "x")
            with pytest.raises(redis.ResponseError) as refused_too:
                theirs.execute_command("NOSUCHCOMMAND", "x")
            same_failure(refused.value, refused_too.value)
    for node in spec.sentinels:
        with connect(spec, node) as conn, node_client(spec, node) as theirs:
            master = resp.pairs(conn.command("SENTINEL", "MASTER", spec.master_name))
            expected = theirs.sentinel_master(spec.master_name)
            assert (master["ip"], int(master["port"]), master["flags"]) == (
                expected["ip"],
                int(expected["port"]),
                expected["flags"] if isinstance(expected["flags"], str) else ",".join(sorted(expected["flags"])),
            )
            assert str(conn.command("SENTINEL", "CKQUORUM", spec.master_name)).startswith("OK ")
    node = spec.initial_master
    with pytest.raises(resp.RespError) as refused, connect(spec, node, password="not-the-password") as conn:
        conn.command("PING")
    wrong = client(
        node.host, node.port, "not-the-password", username=spec.auth("redis")["username"], **spec.tls_kwargs()
    )
    with pytest.raises(redis.AuthenticationError) as theirs_refused, wrong:
        wrong.ping()
    same_failure(refused.value, theirs_refused.value)


def test_resp_reads_what_redis_py_reads_on_every_build(lab: LabSpec) -> None:
    check_like_redis_py(lab)
    obs = observe(lab)
    assert problems(lab, obs) == [] and obs.quorum_ok
    stopped = Node("redis-9", "redis", lab.initial_master.host, 1)  # nothing listens on port 1
    with pytest.raises(resp.RespError) as ours:
        connect(lab, stopped)
    with pytest.raises(redis.ConnectionError) as theirs:
        node_client(lab, stopped).ping()
    same_failure(ours.value, theirs.value)


@pytest.mark.one_server
def test_resp_over_tls_with_acl_users_and_status_of_that_lab(lab_factory, profile_file, lab_home) -> None:
    spec: LabSpec = lab_factory(profile_file(base="production", **SECURE), tag="secure")
    assert spec.tls and spec.acl
    check_like_redis_py(spec)
    result = run_lab("status", "--name", spec.name, "--json", home=lab_home)
    doc = json.loads(result.stdout)
    assert result.returncode == 0 and (doc["tls"], doc["acl"], doc["healthy"]) == (True, True, True), result.stderr
    assert {n["state"] for n in doc["nodes"] + doc["sentinels"]} == {"up"}
    no_cert = {k: v for k, v in spec.tls_kwargs().items() if k == "ssl_ca_certs"}  # tls-auth-clients: refused
    node = spec.initial_master
    auth = spec.auth("redis")
    with pytest.raises(resp.RespError) as refused:
        conn = resp.Connection(node.host, node.port, username=auth["username"], password=auth["password"], tls=no_cert)
        with conn:
            conn.command("PING")
    assert refused.value.kind == "ConnectionError"


def taking(node: Node, talk: Talk) -> JunkServer:
    """A junk server on a killed node's address, once the process has let go of it."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return JunkServer(talk, node.host, node.port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.mark.one_server
def test_status_of_a_lab_with_a_node_answering_junk_names_it_once_in_time(lab: LabSpec, lab_home) -> None:
    """The real `lab status --json` with sentinel-3 replaced by a server that answers junk (stopped, its address
    taken): each kind of junk is one problem line about sentinel-3, a document, exit 1, no traceback, no hang."""
    if lab.backend != "local":
        pytest.skip("a junk server takes a stopped node's address on loopback: the local backend's")
    node = next(n for n in lab.sentinels if n.name == "sentinel-3")
    junk = {
        "a byte every 0.3 s": (drip(), "TimeoutError: Timeout reading from"),
        "200k nested arrays": (replies(b"*1\r\n" * 200_000), "nested deeper than 32"),
        "a 40 MB bulk reply": (flood(b"$41943040\r\n", 41943040), "length out of range"),
        "an integer :abc": (replies(b":abc\r\n"), "bad integer value"),
    }
    with faults.injected(lab, "kill", node.name):
        for case, (talk, expected) in junk.items():
            with taking(node, talk):
                started = time.monotonic()
                result = run_lab("status", "--name", lab.name, "--json", home=lab_home, timeout=30)
                took = time.monotonic() - started
            assert result.returncode == 1 and "Traceback" not in result.stderr, (case, result.stderr)
            about = [p for p in json.loads(result.stdout)["problems"] if p.startswith(f"{node.name} ")]
            assert len(about) == 1 and expected in about[0], (case, about)
            assert took < 15, f"{case}: lab status took {took:.1f} s"  # a process start on a busy machine, + 0.5 s


@pytest.mark.one_server
def test_status_of_a_lab_without_its_password_file_names_the_file_once(lab: LabSpec, lab_home) -> None:
    secret = lab.base_dir / lab.secret_file("redis")[1]
    aside = secret.with_name(secret.name + ".aside")
    secret.rename(aside)
    try:
        result = run_lab("status", "--name", lab.name, "--json", home=lab_home)
    finally:
        aside.rename(secret)
    doc = json.loads(result.stdout)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert [p for p in doc["problems"] if str(secret) in p] == [
        f"{secret} is missing: the lab's password for its redis nodes (redis-1, redis-2, redis-3), which were not asked"
    ]
    assert not [p for p in doc["problems"] if "Authentication" in p or p.startswith("redis-")], doc["problems"]
    assert {n["state"] for n in doc["nodes"]} == {"up"}, doc["nodes"]
