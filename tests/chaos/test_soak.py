"""`lab drill soak` on a real lab: a seeded schedule of faults, each healed and converged before the
next, checked step by step from a history spooled to disk; the same seed replays the same schedule;
Ctrl-C heals the lab and keeps a partial report."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from lab import control
from lab.drill import nemesis
from lab.drill.soak import run_soak
from lab.drill.spool import read_spool
from lab.spec import LabSpec
from lab.waits import wait_for
from tests.helpers import lab_command, run_lab
from tests.integration.test_signals import frozen, interrupt

FAULTS = ("kill-master", "freeze-master", "failover", "kill-sentinel", "stop-master")


@pytest.mark.one_server  # (the schedule, the spool and the check do not depend on the build)
@pytest.mark.one_backend  # (compose's soak machinery: the Ctrl-C soak below runs on both)
def test_a_seeded_soak_reads_step_by_step(healthy_lab: LabSpec, tmp_path: Path) -> None:
    spec, seed, interval = healthy_lab, 2026, (1.0, 3.0)
    report = tmp_path / "soak"
    result = run_soak(spec, seed=seed, chosen=FAULTS, interval=interval, duration=50, report_dir=report, rate=2000)
    f = result.findings
    print(f"\nsoak seed {seed}: {f.summary()}")
    assert not f.stopped and not f.partial
    # The schedule the soak ran is the seed's: the same faults in the same order as its plan.
    planned = [s.fault for s in nemesis.plan(seed, FAULTS, interval, 50)]
    assert [s.fault for s in f.steps] == planned[: len(f.steps)] and len(f.steps) >= 4
    for step in f.steps:
        assert step.converged_ms is not None and step.end_ms is not None and step.ok > 0, step
        if step.fault in ("kill-master", "freeze-master", "failover", "stop-master"):
            assert step.failovers >= 1 and step.unavailable_ms > 0, step
        assert step.zoom and step.roles, "each step has its zoomed panel"
    # A finding (writes lost, a second failover, two masters) is data: printed, not asserted away.
    for step in f.steps:
        if step.lost or step.two_masters_ms or step.failovers > 1:
            print(
                f"finding: step {step.index} {step.fault}: {step.lost} lost, {step.failovers} failovers, "
                f"two masters {step.two_masters_ms / 1000:.2f} s"
            )
    assert f.ok > 6_000 and f.failovers >= sum(1 for s in f.steps if s.fault != "kill-sentinel")
    assert len(f.per_second) >= 45
    # The files: the history whole and in time order, the report step by step.
    times = [r["t"] for r in read_spool(result.history)]
    assert times == sorted(times) and len(times) > 2 * f.ok
    doc = json.loads((report / "soak.json").read_text())
    assert doc["seed"] == seed and len(doc["steps"]) == len(f.steps) and doc["summary"]["partial"] == 0
    page = (report / "soak.html").read_text()
    assert f"--seed {seed}" in page and all(f"<td>{s.fault}</td>" in page for s in f.steps)
    assert "<th>Sentinel setbacks</th>" in page and all("setbacks" in s for s in doc["steps"])
    assert (report / "soak.png").stat().st_size > 10_000


@pytest.mark.one_server
def test_ctrl_c_in_a_soak_heals_the_lab_and_keeps_a_partial_report(
    healthy_lab: LabSpec, lab_home: Path, tmp_path: Path
) -> None:
    spec = healthy_lab
    report = tmp_path / "soak"
    args: tuple[str, ...] = ("drill", "soak", "--name", spec.name, "--faults", "freeze-master", "--interval", "1")
    args = (
        *args,
        "--seed",
        "1",
        "--rate",
        "1000",
    )  # (paced as the drill fixture's: four unpaced workers keep a core busy)
    with lab_command(*args, "--duration", "300", "--report", str(report), home=lab_home) as soak:
        wait_for(lambda: (bool(frozen(spec)), frozen(spec)), what="the soak to freeze the master", timeout=60)
        message = interrupt(soak, signal.SIGINT)
    assert f"a partial soak report: {report / 'soak.html'}" in message, message
    assert frozen(spec) == [], "the interrupted soak thawed the master"
    doc = json.loads((report / "soak.json").read_text())
    assert doc["partial"] is True and doc["summary"]["partial"] == 1 and doc["summary"]["ok"] > 0
    assert "partial: interrupted" in (report / "soak.html").read_text()
    # Healed: the thawed old master is a replica again once the Sentinels turn it (seen in CI, compose: it
    # still said master the moment the command exited).
    control.wait_healthy(spec, timeout=60)
    assert run_lab("status", "--name", spec.name, home=lab_home).returncode == 0
