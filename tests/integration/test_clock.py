"""A Sentinel's wall clock moved (lab.clockshift): it enters TILT, `lab failover` goes on without it, and
`lab heal` gives it the real clock back. Real Sentinels, real TILT."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from lab import clockshift
from lab.backends.compose import ComposeBackend
from lab.nodes import current_master
from lab.pytest_plugin import require_fault
from lab.spec import LabSpec, Node
from lab.topology import node_client
from lab.waits import wait_for
from tests.helpers import run_lab

# The jump runs on both backends (a container sources the library's environment from its directory); the
# stall and the refusals do not depend on the backend.
pytestmark = [pytest.mark.integration, pytest.mark.one_server]


def lab_cli(lab: LabSpec, *args: str) -> str:
    result = run_lab(*args, "--name", lab.name, home=lab.base_dir.parent, timeout=120)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


def tilt(lab: LabSpec, sentinel: Node) -> int:
    with node_client(lab, sentinel, timeout=2) as conn:
        return int(conn.info("sentinel")["sentinel_tilt"])


def preloaded(lab: LabSpec, sentinel: Node) -> bool:
    """The clock library is mapped in the Sentinel's process (its environment is no witness: Redis writes
    its process title over it). A container's server is found by the engine (its pidfile has the pid it has
    inside the container)."""
    if lab.backend == "compose":
        from lab.docker import engine

        container = ComposeBackend()._containers(lab)[sentinel.name]
        pid = int(engine().api.inspect_container(container.id)["State"]["Pid"])
    else:
        pid = int(lab.files(sentinel).pidfile.read_text())
    return "clockshift-" in Path(f"/proc/{pid}/maps").read_text()


def test_a_sentinel_whose_clock_jumps_is_in_tilt_and_lab_failover_goes_on_without_it(lab: LabSpec) -> None:
    require_fault(lab, "clock")
    sentinel = lab.sentinels[0]
    assert "wall clock jumped +30s" in lab_cli(lab, "clock", sentinel.name, "--jump", "30")
    wait_for(lambda: (tilt(lab, sentinel) == 1, "no TILT"), what=f"{sentinel.name} in TILT", timeout=5)
    assert preloaded(lab, sentinel)
    status = json.loads(run_lab("status", "--name", lab.name, "--json", home=lab.base_dir.parent).stdout)
    assert [(f["kind"], f["node"], f["settings"]) for f in status["faults"]] == [
        ("clock", sentinel.name, {"jump": "30"})
    ]
    old = current_master(lab)
    lab_cli(lab, "failover")  # (a Sentinel in TILT accepts SENTINEL FAILOVER and does nothing: not asked)
    assert current_master(lab) != old
    assert "undone: clock" in lab_cli(lab, "heal")
    assert tilt(lab, sentinel) == 0 and not preloaded(lab, sentinel)
    assert not (lab.files(sentinel).dir / clockshift.FILE).exists()
    assert not (lab.files(sentinel).dir / "clock.env").exists()


@pytest.mark.one_backend
def test_a_stalled_clock_enters_tilt_when_it_catches_up(lab: LabSpec) -> None:
    require_fault(lab, "clock")
    sentinel = lab.sentinels[1]
    lab_cli(lab, "clock", sentinel.name, "--stall", "3")
    started = time.monotonic()
    assert tilt(lab, sentinel) == 0  # standing still, each tick sees no time pass: no TILT yet
    wait_for(lambda: (tilt(lab, sentinel) == 1, "no TILT"), what=f"{sentinel.name} in TILT", timeout=8)
    assert time.monotonic() - started >= 2.5  # (when it caught up, not before)
    lab_cli(lab, "heal")
    assert tilt(lab, sentinel) == 0


@pytest.mark.one_backend
def test_clock_faults_are_for_sentinels_only(lab: LabSpec) -> None:
    refused = run_lab("clock", "--name", lab.name, "redis-1", "--jump", "5", home=lab.base_dir.parent)
    assert refused.returncode == 2 and "clock faults are for Sentinels" in refused.stderr
    bad = run_lab("clock", "--name", lab.name, "sentinel-1", "--jump", "0", home=lab.base_dir.parent)
    assert bad.returncode == 2 and "not 0" in bad.stderr
