"""The link and clock drills against a real lab: a latency spike, a narrowed replication stream, a one-way partition,
a flapping partition and a lossy master, each with the checker's findings and a report; and a link drill as
a client-matrix row. What a drill loses is data; what each asserts is what its fault must cause."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.drill.result import DrillResult
from lab.drill.scenarios import SPIKE_MS
from lab.pytest_plugin import require_fault
from lab.spec import LabSpec
from tests.helpers import run_lab

# The links' rules and delayers are tested on both backends (tests/integration/test_link_faults.py); what a
# drill does with them does not depend on the backend.
pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.one_server, pytest.mark.one_backend]


def applied(result: DrillResult, kind: str) -> list[str]:
    """The fault records of ``kind`` (inject, applied, revert): the drill did what it says."""
    return [r["action"] for r in result.recorder.history.records if r["type"] == "fault" and r["fault"] == kind]


def report_of(result: DrillResult) -> Path:
    assert result.report_dir is not None
    return result.report_dir


def test_a_latency_spike_above_down_after_fails_over_a_master_that_never_died_in_a_matrix_cell(
    healthy_lab: LabSpec, tmp_path: Path
) -> None:
    """As a client-matrix row (one cell: a drill with its report, through the matrix)."""
    require_fault(healthy_lab, "degrade")
    out = tmp_path / "matrix"
    ran = run_lab(
        "clients", "--name", healthy_lab.name, "--clients", "redis-py", "--scenarios", "latency-spike",
        "--settings", "recommended", "--report", str(out), "--json", home=healthy_lab.base_dir.parent, timeout=180,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    [cell] = json.loads(ran.stdout)["cells"]
    # Its replies came SPIKE_MS late, past the lab's down-after (1000 ms): the Sentinels replaced a live master.
    assert SPIKE_MS > 1000 and (cell["scenario"], cell["client"]) == ("latency-spike", "redis-py"), cell
    assert cell["failovers"] >= 1, cell
    story = json.loads((out / "latency-spike" / "redis-py-recommended" / "report.json").read_text())["story"]
    assert "had its links degraded" in story and "had its links restored" in story


def test_replicas_behind_a_narrow_link_lose_what_they_had_not_received_when_the_master_dies(
    healthy_lab: LabSpec, drill
) -> None:
    require_fault(healthy_lab, "degrade")
    result = drill(healthy_lab, "slow-replication", duration=10)
    summary = result.findings.summary()
    # 1,000 writes a second need ~400 kbit/s of replication stream; the link carries 256 kbit/s.
    assert applied(result, "kill") and summary["failovers"] >= 1 and summary["lost"] > 0, summary


def test_a_master_whose_packets_to_the_others_are_lost_is_replaced(healthy_lab: LabSpec, drill) -> None:
    require_fault(healthy_lab, "isolate")
    result = drill(healthy_lab, "one-way-master", duration=12)
    assert applied(result, "isolate")[:2] == ["inject", "applied"]
    assert len(result.findings.failovers) >= 1, result.findings.summary()


@pytest.mark.parametrize("scenario", ["flapping-partition", "lossy-master"])
def test_a_flapping_or_lossy_master_is_drilled_and_the_clients_write_again(
    healthy_lab: LabSpec, drill, scenario: str
) -> None:
    require_fault(healthy_lab, "flap" if scenario == "flapping-partition" else "degrade")
    result = drill(healthy_lab, scenario, duration=12)
    kind = "flap" if scenario == "flapping-partition" else "degrade"
    assert applied(result, kind) == ["inject", "applied", "revert"], applied(result, kind)
    story = json.loads((report_of(result) / "report.json").read_text())["story"]
    assert ("stopped flapping" if kind == "flap" else "had its links restored") in story
    assert result.findings.summary()["ok"] > 0


def test_a_sentinel_in_tilt_after_a_clock_jump_does_not_stop_the_others_failing_over(
    healthy_lab: LabSpec, drill
) -> None:
    require_fault(healthy_lab, "clock")
    result = drill(healthy_lab, "sentinel-clock-jump", duration=10)
    records = result.recorder.history.records
    tilted = [r["sentinel"] for r in records if r["type"] == "sentinel" and r["event"] == "+tilt"]
    assert healthy_lab.sentinels[0].name in tilted, tilted  # the report's Sentinel lane shows it
    # and its notes say what TILT costs, with the time
    first = healthy_lab.sentinels[0].name
    assert any(n.startswith(f"{first} entered TILT") and "(+tilt at " in n for n in result.findings.notes)
    assert len(result.findings.failovers) >= 1 and applied(result, "kill"), result.findings.summary()
