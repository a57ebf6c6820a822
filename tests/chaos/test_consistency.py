"""The register and list workloads on a real lab: checked for linearizability and as Elle checks a
list-append history. No anomaly where nothing touched the data; the isolated master's lost writes
found as what they are."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.drill.export import read_jepsen, write_export
from lab.drill.linearizable import check
from lab.pytest_plugin import require_fault
from lab.spec import LabSpec

WORKLOADS = ("register", "list")


@pytest.mark.one_backend  # (the checkers read the history, whatever runs the lab)
@pytest.mark.one_server  # (the checkers do not depend on the build; the fault tests run on every one)
@pytest.mark.parametrize("workload", WORKLOADS)
def test_a_drill_that_leaves_the_data_alone_finds_no_anomaly(
    healthy_lab: LabSpec, drill, workload: str, tmp_path: Path
) -> None:
    result = drill(healthy_lab, "kill-sentinel", duration=4, workload=workload)
    findings, c = result.findings, result.findings.consistency
    assert c is not None and findings.workload == workload
    assert c["operations"] > 500 and c["keys"] >= 1
    assert (c["valid"], c["anomalies"]) == (True, 0), c
    assert findings.summary()["anomalies"] == findings.summary()["stale_reads"] == 0
    records = result.recorder.history.records
    if workload == "list":  # one more worker reads through a replica; what it sees is counted apart
        assert any(r.get("replica") and r["type"] == "ok" for r in records)
    else:  # exported as Jepsen writes a history, read back: the same verdict on the same operations
        written = write_export(records, workload, tmp_path)
        theirs = check(read_jepsen(written[0].read_text(), independent=True))
        # (fewer operations: a compare-and-set that did not swap is a :fail in Jepsen's form, left out)
        assert (theirs.valid, theirs.keys) == (True, c["keys"]) and 0 < theirs.operations <= c["operations"]


@pytest.mark.one_server
@pytest.mark.one_backend  # (the checkers' verdicts; compose's isolation: the zombie and min-replicas tests)
@pytest.mark.parametrize("workload", WORKLOADS)
def test_an_isolated_masters_lost_writes_are_anomalies(healthy_lab: LabSpec, drill, workload: str) -> None:
    require_fault(healthy_lab, "isolate")
    findings = drill(healthy_lab, "isolate-master", duration=9, workload=workload).findings
    c = findings.consistency
    assert c is not None and c["valid"] is False and c["anomalies"] > 0, c
    if workload == "list":
        assert c["counts"]["lost"] == findings.lost > 0, "the list checker and the final read agree on what was lost"
    else:
        assert c["violations"] and "no order explains" in c["violations"][0]
    print(f"\n{workload}: {c['anomalies']} anomalies: {(c.get('violations') or c.get('examples'))!r:.300}")
