"""A TLS-only lab (`lab up --tls`: a CA of the lab's own, `port 0`), on both backends: plain text is
refused, every client the project has follows a failover over TLS, the health checker runs its whole
Sentinel check over TLS, and a build without TLS is refused with one line."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from lab import nodes
from lab.backends import get_backend
from lab.drill.clients import CLIENTS
from lab.lint import lint_paths
from lab.pytest_plugin import require_server
from lab.spec import LabSpec
from lab.topology import client, node_client
from redis_ha_health.check_redis_health import main as health_check
from tests.helpers import SLOW_OK, assert_only_the_kill_tail_lost, require_client, run_lab

pytestmark = [pytest.mark.integration, pytest.mark.one_server]


@pytest.fixture
def tls_lab(lab_factory, profile_file) -> LabSpec:
    spec: LabSpec = lab_factory(profile_file(redis={"tls": {"enabled": True}}), tag="tls")
    assert spec.tls
    return spec


def plain_text_answer(host: str, port: int) -> bytes:
    """What a node says to a plain-text PING (a TLS port closes the connection instead)."""
    with socket.create_connection((host, port), timeout=2) as sock:
        sock.sendall(b"PING\r\n")
        try:
            return sock.recv(64)
        except (ConnectionResetError, TimeoutError):
            return b""


def test_tls_lab_refuses_plain_text_and_fails_over_over_tls(
    tls_lab: LabSpec, drill, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tls_lab
    for node in spec.nodes:  # data nodes and Sentinels: TLS only
        assert plain_text_answer(node.host, node.port) == b"", node.name
    without_cert = {k: v for k, v in spec.tls_kwargs().items() if k not in ("ssl_certfile", "ssl_keyfile")}
    with pytest.raises((redis.ConnectionError, OSError)):  # tls-auth-clients yes: a certificate or nothing
        client(spec.initial_master.host, spec.initial_master.port, spec.password, **without_cert).ping()

    # The health checker: Sentinel discovery, every node, over TLS (the files from the environment).
    files = spec.tls_files()
    monkeypatch.setenv("REDIS_PASSWORD", spec.password)
    monkeypatch.setenv("SENTINEL_PASSWORD", spec.sentinel_password or "")
    monkeypatch.setenv("REDIS_TLS_CA_CERT", str(files.ca))
    monkeypatch.setenv("REDIS_TLS_CERT", str(files.client_cert))
    monkeypatch.setenv("REDIS_TLS_KEY", str(files.client_key))
    sentinels = [arg for n in spec.sentinels for arg in ("--sentinel", n.address)]
    printed: list[str] = []
    # (PING thresholds out of the way: a TLS handshake on a machine this suite keeps busy can take 1 s.)
    args = [*sentinels, "--master-name", spec.master_name, "--expect-replicas", "2", "--ping-crit", "10000"]
    code = health_check([*args, *SLOW_OK], out=printed.append)
    assert code == 0 and printed[0].startswith("REDIS OK"), "\n".join(printed)

    # Failover over TLS: the lab's own workload (redis-py), then each Node.js client on the local backend.
    clients = ["lab"] + ([c for c in CLIENTS if c != "redis-py"] if spec.backend == "local" else [])
    for name in clients:
        kw = {} if name == "lab" else {"client": name, "settings": "recommended", "clients": 1}
        if name != "lab":
            require_client(name)
        result = drill(spec, "kill-master", duration=5, **kw)
        summary = result.findings.summary()
        assert summary["ok"] > 50 and summary["failovers"] >= 1, (name, summary)
        assert_only_the_kill_tail_lost(result)
        with node_client(spec, nodes.current_master(spec, timeout=10)) as conn:
            info = conn.info("replication")
            assert info["role"] == "master" and info["connected_slaves"] == 2, (name, info)
    # The running lab's files lint clean (TLS on, no plain port, keys 0600).
    findings = lint_paths(sorted(spec.base_dir.glob("*/*.conf")), lab=True)
    assert [f for f in findings if f.severity == "error"] == []


def test_a_build_without_tls_is_refused_in_one_line(tmp_path) -> None:
    require_server("redis-6.2")
    result = run_lab("up", "--name", "notls", "--tls", "--server", "redis-6.2", "--backend", "local", home=tmp_path)
    assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "redis-6.2 is built without TLS support" in result.stderr
    assert not (tmp_path / "notls").exists(), "nothing was started or written"


def test_tls_is_not_switched_on_under_a_running_lab(healthy_lab: LabSpec) -> None:
    """`lab up --tls` of a running plain-text lab would be another lab: refused, the lab left as it is."""
    name, home = healthy_lab.name, healthy_lab.base_dir.parent
    result = run_lab("up", "--name", name, "--tls", home=home)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"lab {name!r} runs plain text; run `lab down --name {name}` first to change that" in result.stderr
    assert run_lab("status", "--name", name, home=home).returncode == 0


def _missing(path: Path) -> str:
    path.unlink()
    return "is missing"


def _unreadable(path: Path) -> str:
    path.unlink()
    path.mkdir()  # unreadable even for root (chmod 000 is not)
    return "is not a regular file (a directory)"


def _fifo(path: Path) -> str:
    path.unlink()
    os.mkfifo(path)  # hostile tour: every tool hung on it, the health checker despite its timeout
    return "is not a regular file (a FIFO)"


def _not_pem(path: Path) -> str:
    path.write_text("not a certificate")
    return "is not a PEM"


#: file -> what is done to it -> what the tools must say about it
BREAKS: list[tuple[str, Callable[[Path], str]]] = [
    ("client_key", _missing),
    ("client_key", _unreadable),
    ("client_key", _fifo),
    ("client_cert", _not_pem),
    ("ca", _missing),
]
KIND = {"client_key": "client key", "client_cert": "client certificate", "ca": "CA certificate"}


def tls_tools(spec: LabSpec, monkeypatch: pytest.MonkeyPatch) -> dict[str, Callable[[], tuple[int, str]]]:
    """Every tool that opens TLS connections to the lab: exit code and what it printed."""
    files = spec.tls_files()
    env = {
        "REDIS_TLS_CA_CERT": str(files.ca),
        "REDIS_TLS_CERT": str(files.client_cert),
        "REDIS_TLS_KEY": str(files.client_key),
        "REDIS_PASSWORD": spec.password or "",
        "SENTINEL_PASSWORD": spec.sentinel_password or "",
        "SENTINEL_HOSTS": ",".join(n.address for n in spec.sentinels),
        "SENTINEL_MASTER_NAME": spec.master_name,
    }
    home = spec.base_dir.parent

    def lab(*args: str) -> Callable[[], tuple[int, str]]:
        def run() -> tuple[int, str]:
            done = run_lab(*args, "--name", spec.name, home=home, timeout=60)
            return done.returncode, done.stderr

        return run

    def admin() -> tuple[int, str]:
        script = Path(sys.executable).parent / "redis-admin"
        done = subprocess.run(
            [str(script), "sessions", "count"], capture_output=True, text=True, env={**os.environ, **env}, timeout=60
        )
        return done.returncode, done.stderr

    def health() -> tuple[int, str]:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        printed: list[str] = []
        code = health_check([*SLOW_OK], out=printed.append)
        return code, "\n".join(printed)

    return {
        "lab status": lab("status"),
        "lab heal": lab("heal"),
        "lab failover": lab("failover"),
        "redis-admin": admin,
    } | {"check-redis-health": health}


@pytest.mark.parametrize(("which", "damage"), BREAKS, ids=[f"{w}-{d.__name__.strip('_')}" for w, d in BREAKS])
def test_a_broken_tls_file_is_named_by_every_tool(
    tls_lab: LabSpec, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, which: str, damage: Callable[[Path], str]
) -> None:
    """Issue 24 item 12: with client.key deleted, `lab status` showed all six nodes down (they were
    up) and `lab heal`/`lab failover` timed out after 30 s. Each tool now says which file, in one
    line, and exits non-zero (the health checker UNKNOWN: it cannot judge the servers)."""
    spec = tls_lab
    path = getattr(spec.tls_files(), which)
    kept = tmp_path / "kept"
    shutil.copy2(path, kept)
    said = damage(path)
    try:
        for tool, run in tls_tools(spec, monkeypatch).items():
            code, text = run()
            lines = text.strip().splitlines()
            assert code == (3 if tool == "check-redis-health" else 1) and len(lines) == 1, (tool, code, text)
            assert f"TLS {KIND[which]} {path}" in lines[0] and said in lines[0], (tool, text)
    finally:
        if path.is_dir():
            path.rmdir()
        elif path.exists() and not path.is_file():
            path.unlink()
        shutil.copy2(kept, path)
    # The lab was up all along, and its status says it is TLS only (issue 25 case 6).
    status = run_lab("status", "--name", spec.name, home=spec.base_dir.parent)
    assert status.returncode == 0 and "TLS only" in status.stdout


def test_a_client_key_of_another_certificate_is_named(tls_lab: LabSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's key in place of the client's: readable, a PEM key, but not the certificate's."""
    spec = tls_lab
    files = spec.tls_files()
    monkeypatch.setenv("REDIS_TLS_KEY", str(files.key))
    for name, value in (("REDIS_TLS_CA_CERT", files.ca), ("REDIS_TLS_CERT", files.client_cert)):
        monkeypatch.setenv(name, str(value))
    monkeypatch.setenv("SENTINEL_HOSTS", ",".join(n.address for n in spec.sentinels))
    printed: list[str] = []
    assert health_check([*SLOW_OK], out=printed.append) == 3
    assert (
        f"TLS client certificate {files.client_cert} and key {files.key} cannot be used (they do not match)"
        in printed[0]
    )
    script = Path(sys.executable).parent / "redis-admin"
    done = subprocess.run([str(script), "sessions", "count"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "they do not match" in done.stderr, done.stderr


def test_a_node_is_never_stopped_when_it_could_not_start_again(tls_lab: LabSpec, tmp_path: Path) -> None:
    """Hostile tour: with ca.crt gone, `lab heal` restarted a killed node, which died at start ("Failed to
    configure CA") and stayed dead. The servers' files are checked before a node is stopped or started."""
    spec, home = tls_lab, tls_lab.base_dir.parent
    ca = spec.tls_files().ca
    kept = tmp_path / "ca.crt"
    shutil.copy2(ca, kept)
    copy = tmp_path / "kvserver"  # the same build in another file: an upgrade that would stop redis-2
    shutil.copy(shutil.which("redis-server") or "redis-server", copy)
    assert run_lab("kill", "--name", spec.name, "redis-3", home=home).returncode == 0
    ca.unlink()
    try:
        for command in (["heal"], ["restart", "redis-2"], ["upgrade", "redis-2", "--server", str(copy)]):
            done = run_lab(command[0], "--name", spec.name, *command[1:], home=home)
            assert done.returncode == 1 and f"TLS CA certificate {ca} is missing" in done.stderr, (command, done.stderr)
        states = {n.name: get_backend(spec.backend).node_state(spec, n) for n in spec.nodes}
        assert states["redis-2"] == "up" and states["redis-3"] == "down", states
    finally:
        shutil.copy2(kept, ca)
    healed = run_lab("heal", "--name", spec.name, home=home)
    assert healed.returncode == 0, healed.stderr
