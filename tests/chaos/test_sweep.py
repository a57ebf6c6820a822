"""`lab sweep` against a real lab: a small grid (two down-after values by one loss), each run a drill with its
report, the table and the heat map, and the Sentinels' setting back to the profile's at the end. Its bad input
is tests/unit/test_sweep.py; its interrupts are in tests/integration/test_signals.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab import delayers, faults
from lab.nodes import current_master
from lab.pytest_plugin import require_fault
from lab.spec import LabSpec
from lab.topology import node_client
from tests.helpers import run_lab, sentinel_settings

# A sweep is drills on the lab's degraded links (their rules and delayers are tested on both backends in
# tests/integration/test_link_faults.py) under SENTINEL SET: nothing in it depends on the backend.
pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.one_server, pytest.mark.one_backend]


def test_a_sweep_drills_every_cell_and_gives_the_sentinels_their_setting_back(
    healthy_lab: LabSpec, tmp_path: Path
) -> None:
    spec = healthy_lab
    require_fault(spec, "degrade")
    out = tmp_path / "sweep"
    before = drill_keys(spec)
    ran = run_lab(
        "sweep", "--name", spec.name, "--set", "down-after-milliseconds=500,2000", "--loss", "40", "--span", "3",
        "--report", str(out), "--json", home=spec.base_dir.parent, timeout=400,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    doc = json.loads(ran.stdout)
    assert doc["grid"]["values"] == [500, 2000] and doc["grid"]["strengths"] == [40.0], doc["grid"]
    # each value's kill: the failover came, and not before the Sentinels could have seen the master down (their
    # last unanswered PING went at most a second before the kill)
    for row in doc["kills"]:
        assert row["runs"] == 1 and len(row["failover_s"]) == 1, row
        assert row["failover_s"][0] > row["value"] / 1000 - 1.0, row
    assert [(c["value"], c["strength"], c["runs"]) for c in doc["cells"]] == [(500, 40.0, 1), (2000, 40.0, 1)]
    for cell in doc["cells"]:
        assert cell["with_failover"] <= cell["runs"] and cell["failovers"] >= cell["with_failover"], cell
        [report] = cell["reports"]
        story = json.loads((Path(report) / "report.json").read_text())["story"]
        assert "had its links degraded" in story and "had its links restored" in story, story
    assert (out / "heatmap.png").read_bytes()[:4] == b"\x89PNG"
    table = (out / "sweep.md").read_text().splitlines()
    assert table[0] == "| down-after-milliseconds | master killed: fails over in (s) | 40% loss |"
    assert [line.split(" | ")[0] for line in table[2:]] == ["| 500", "| 2,000"]
    # the setting was the row's while it ran (the drill reports say so), and the profile's again after
    assert json.loads((Path(doc["cells"][0]["reports"][0]) / "report.json").read_text())["lab"]["down_after_ms"] == 500
    assert sentinel_settings(spec, "down-after-milliseconds") == [str(spec.down_after_ms)] * 3
    assert faults.recorded(spec) == [] and delayers.running(spec) == []
    assert drill_keys(spec) == before, "each run's keys are deleted once it is checked"


def drill_keys(spec: LabSpec) -> int:
    with node_client(spec, current_master(spec), timeout=10) as conn:
        return sum(1 for _ in conn.scan_iter(match="drill:*", count=1000))


def test_a_sweep_that_cannot_reach_a_sentinel_sets_nothing_and_says_so(healthy_lab: LabSpec, tmp_path: Path) -> None:
    spec = healthy_lab
    require_fault(spec, "degrade")
    home = spec.base_dir.parent
    assert run_lab("kill", "--name", spec.name, "sentinel-3", home=home).returncode == 0
    ran = run_lab(
        "sweep", "--name", spec.name, "--set", "down-after-milliseconds=700", "--loss", "10",
        "--report", str(tmp_path / "sweep"), home=home, timeout=120,
    )  # fmt: skip
    assert ran.returncode == 1, ran.stdout + ran.stderr
    last = ran.stderr.strip().splitlines()[-1]
    assert last.startswith("lab sweep: could not read down-after-milliseconds on sentinel-3 (") and last.endswith(
        "): nothing was set"
    ), ran.stderr
    assert [f.kind for f in faults.recorded(spec)] == ["kill"]
    assert run_lab("heal", "--name", spec.name, home=home).returncode == 0
    assert sentinel_settings(spec, "down-after-milliseconds") == [str(spec.down_after_ms)] * 3
