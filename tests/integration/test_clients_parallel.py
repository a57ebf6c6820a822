"""`lab clients --parallel N`: cells on the lab and N-1 helper labs at once, against real servers; the
helpers gone at the end, on SIGTERM, and after a kill -9 by the next run."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from lab import control, faults, state
from lab.spec import LabSpec
from lab.waits import wait_for
from tests.helpers import lab_command, run_lab
from tests.integration.test_signals import _cmdline, frozen, interrupt, wait_recorded

pytestmark = [pytest.mark.integration, pytest.mark.chaos, pytest.mark.one_server, pytest.mark.one_backend]


def parallel(spec: LabSpec, report: Path, *scenarios: str) -> tuple[str, ...]:
    return (
        *("clients", "--name", spec.name, "--clients", "redis-py", "--settings", "defaults"),
        *("--scenarios", ",".join(scenarios), "--parallel", "2", "--report", str(report)),
    )


def children(report: Path) -> list[Path]:
    """The cells' processes (`lab clients` children, their adapters): their command lines name the report."""
    return [p for p in Path("/proc").glob("[0-9]*") if str(report) in _cmdline(p) and "--parallel" not in _cmdline(p)]


def test_cells_run_on_the_lab_and_a_helper_that_is_removed_after(
    healthy_lab: LabSpec, lab_home: Path, tmp_path: Path
) -> None:
    spec, report = healthy_lab, tmp_path / "matrix"
    ran = run_lab(*parallel(spec, report, "kill-sentinel", "failover"), "--json", home=lab_home, timeout=240)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    doc = json.loads(ran.stdout)
    assert doc["labs"] == 2 and [c["scenario"] for c in doc["cells"]] == ["kill-sentinel", "failover"], doc
    assert all(c["ok"] > 0 and c["lost"] == 0 and c["recovered"] for c in doc["cells"]), doc["cells"]
    for cell in doc["cells"]:  # each report where a serial matrix puts it
        assert cell["report"] == str(report / cell["scenario"] / "redis-py-defaults" / "report.html")
        assert Path(cell["report"]).is_file()
    assert sorted(p.name for p in report.iterdir()) == [
        "failover",
        "kill-sentinel",
        "matrix.html",
        "matrix.json",
        "matrix.md",
    ]
    assert "on 2 labs at once" in (report / "matrix.html").read_text()
    ran_on = {line.rsplit("(lab ", 1)[-1].rstrip(")") for line in ran.stderr.splitlines() if "recovered" in line}
    assert ran_on == {spec.name, f"{spec.name}-2"}, ran.stderr
    assert f"lab {spec.name}-2 is healthy after" in ran.stderr
    assert not state.exists(lab_home, f"{spec.name}-2"), "the helper lab is removed"


def test_sigterm_stops_the_cells_undoes_their_faults_and_removes_the_helper(
    healthy_lab: LabSpec, lab_home: Path, tmp_path: Path
) -> None:
    spec, report = healthy_lab, tmp_path / "matrix"
    with lab_command(*parallel(spec, report, "freeze-master", "kill-master"), home=lab_home) as matrix:
        fault = wait_recorded(spec, "freeze", matrix)
        message = interrupt(matrix, signal.SIGTERM)
    assert "cells under way (each undid its own fault)" in message or "cell under way" in message, message
    assert f"removed the helper lab {spec.name}-2" in message and f"removed the unfinished report {report}" in message
    assert not state.exists(lab_home, f"{spec.name}-2") and not report.exists()
    assert frozen(spec) == [] and fault.kind not in [f.kind for f in faults.recorded(spec)]
    assert children(report) == [], "no cell left running"


def test_a_kill_9_leaves_no_cell_running_and_the_next_run_removes_the_helper(
    healthy_lab: LabSpec, lab_home: Path, tmp_path: Path
) -> None:
    spec, report, helper = healthy_lab, tmp_path / "matrix", f"{healthy_lab.name}-2"
    with lab_command(*parallel(spec, report, "freeze-master", "kill-sentinel"), home=lab_home) as matrix:
        wait_recorded(spec, "freeze", matrix)
        matrix.kill()
        matrix.communicate()

    def cells_ended() -> tuple[bool, str]:
        left = children(report)
        return not left, f"{len(left)} processes"

    wait_for(cells_ended, what="the cells to end with their parent (PR_SET_PDEATHSIG)", timeout=60)
    assert frozen(spec) == [], "the cell undid its freeze as it ended"
    owner = state.helper_owner(lab_home, helper)
    assert owner is not None and (owner.pid, owner.running) == (matrix.pid, False), "marked as left by the killed run"
    listed = run_lab("list", home=lab_home)
    assert f"left by a killed `lab clients --parallel` (pid {matrix.pid})" in listed.stdout, listed.stdout
    again = tmp_path / "again"
    ran = run_lab(*parallel(spec, again, "kill-sentinel"), home=lab_home, timeout=240)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert f"lab {helper}, a helper that a killed run (pid {matrix.pid}) left, is used and removed" in ran.stderr
    assert not state.exists(lab_home, helper)


def test_a_lab_of_the_users_with_a_helpers_name_is_refused_and_left_alone(
    healthy_lab: LabSpec, lab_home: Path, tmp_path: Path
) -> None:
    spec, other = healthy_lab, f"{healthy_lab.name}-2"
    theirs = control.up(other, "lab", "local", lab_home).spec
    try:
        ran = run_lab(*parallel(spec, tmp_path / "matrix", "kill-master"), home=lab_home, timeout=120)
        assert ran.returncode == 2, ran.stdout + ran.stderr
        assert ran.stderr.strip() == (
            f"lab clients: --parallel 2: lab {other} exists and is not a helper of lab {spec.name}: its cells "
            f"would run on it; remove it (`lab down --name {other}`) or use another --name"
        )
        assert not (tmp_path / "matrix").exists() and faults.recorded(theirs) == [] and faults.recorded(spec) == []
        assert "helper_of" not in state.load_raw(lab_home, other)
    finally:
        control.down(other, lab_home)


def test_bad_parallel_values_are_usage_errors(tmp_path: Path) -> None:
    for value in ("0", "2.5", "9"):
        ran = run_lab("clients", "--parallel", value, home=tmp_path)
        assert ran.returncode == 2, ran.stderr
        assert f"argument --parallel: must be a whole number of labs from 1 to 8, got '{value}'" in ran.stderr
    ran = run_lab("clients", "--parallel", "two", home=tmp_path)
    assert ran.returncode == 2 and "argument --parallel: expected labs, got 'two'" in ran.stderr, ran.stderr
    name = "a" * 40
    ran = run_lab("clients", "--name", name, "--parallel", "2", home=tmp_path)
    assert ran.returncode == 2, ran.stderr
    assert ran.stderr.strip() == (
        f"lab clients: --parallel 2: the helper lab '{name}-2' would need a name over 40 characters: "
        "use a shorter --name"
    )
    assert not (tmp_path / name).exists() and not (tmp_path / f"{name}-2").exists()
