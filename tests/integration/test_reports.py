"""Drill reports on a real lab: the four files, a valid picture, report.json against its schema,
and the `lab drill` command with its CI gate, on both backends."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
from matplotlib.image import imread

from lab.drill.report import check_destination
from lab.drill.scenarios import RECOVERY_TAIL_S, SCENARIOS
from tests.helpers import assert_no_lab_started, assert_only_the_kill_tail_lost, run_lab

pytestmark = pytest.mark.integration
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "report.schema.json").read_text())


@pytest.mark.one_backend  # (the report and its gates are the drill's, whatever runs the lab)
@pytest.mark.one_server
def test_a_drill_writes_a_report_that_matches_its_schema(healthy_lab, drill, tmp_path: Path) -> None:
    result = drill(healthy_lab, "kill-master", duration=5)
    directory = result.report_dir
    assert directory is not None
    assert sorted(p.name for p in directory.iterdir()) == [
        "history.jsonl",
        "report.html",
        "report.json",
        "timeline.png",
    ]
    doc = json.loads((directory / "report.json").read_text())
    jsonschema.validate(doc, SCHEMA)
    assert doc["summary"]["failovers"] >= 1 and doc["lab"]["backend"] == healthy_lab.backend
    assert_only_the_kill_tail_lost(result)
    # The fault is stamped when the kill started, and again once it had taken effect; the story opens with it.
    [kill] = [f for f in doc["faults"] if f["action"] == "inject"]
    assert kill["fault"] == "kill" and kill["t"] <= kill["applied"] < kill["t"] + 5000, kill
    # (a kill that took a while to apply, a container on a busy engine: "(in effect at 1.38 s)" follows; CI, compose)
    opening = f"{kill['node']} was killed (SIGKILL) at {kill['t'] / 1000:.2f} s"
    assert re.match(re.escape(opening) + r"( \(in effect at \d+\.\d\d s\))?; ", doc["story"]), doc["story"]
    marks = [r["action"] for r in result.recorder.history.records if r["type"] == "fault"]
    assert marks == ["inject", "applied", "revert"], marks
    picture = imread(directory / "timeline.png")
    height, width = picture.shape[:2]
    assert width >= 1000 and 400 <= height <= 1000, picture.shape
    assert (directory / "report.html").read_text().count("data:image/png;base64,") == 1, "self-contained"
    types = {json.loads(line)["type"] for line in (directory / "history.jsonl").read_text().splitlines()}
    assert types >= {"invoke", "ok", "sentinel", "role", "fault", "final"}


@pytest.mark.one_backend  # (the report and its gates are the drill's, whatever runs the lab)
@pytest.mark.smoke
@pytest.mark.one_server
def test_lab_drill_reports_and_gates_on_findings(healthy_lab, lab_home: Path, tmp_path: Path) -> None:
    report = tmp_path / "gate"
    ran = run_lab(
        "drill", "failover", "--name", healthy_lab.name, "--duration", "3", "--rate", "1000", "--report", str(report),
        "--fail-on", "lost>0", "--fail-on", "failovers<1", home=lab_home, timeout=120,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "acknowledged writes lost" in ran.stdout and str(report / "report.html") in ran.stdout
    assert "two masters at once (role samples)" in ran.stdout
    gated = run_lab(
        "drill", "kill-sentinel", "--name", healthy_lab.name, "--duration", "2", "--report", str(tmp_path / "g2"),
        "--fail-on", "ok>0", "--json", "--rate", "200", home=lab_home, timeout=120,
    )  # fmt: skip
    assert gated.returncode == 1 and "lab drill: findings over the gate: ok=" in gated.stderr
    doc = json.loads(gated.stdout)
    jsonschema.validate(doc, SCHEMA)
    # --rate paces the four workers together: about 200 operations a second, never a busy loop.
    history = [json.loads(line) for line in (tmp_path / "g2" / "history.jsonl").read_text().splitlines()]
    invoked = [r["t"] for r in history if r["type"] == "invoke"]
    asked = 200 * (max(invoked) - min(invoked)) / 1000
    assert doc["rate"] == 200 and 0.5 * asked <= len(invoked) <= 1.1 * asked + 4, (len(invoked), asked)
    assert "at 200 operations/s" in (tmp_path / "g2" / "report.html").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["drill", "nope"], "unknown drill 'nope' (choose from: " + ", ".join(SCENARIOS) + ", soak)"),
        (
            ["drill", "kill-master", "--fail-on", "lost>>0"],
            "--fail-on 'lost>>0': expected METRIC OP NUMBER, e.g. 'lost>0'",
        ),
        (
            ["drill", "kill-master", "--fail-on", "bogus>0"],
            "--fail-on 'bogus>0': unknown metric 'bogus' (choose from: ",
        ),
        (["drill", "kill-master", "--clients", "0"], "error: argument --clients: must be from 1 to 64, got '0'"),
        (["drill", "kill-master", "--clients", "10000"], "error: argument --clients: must be from 1 to 64"),
        (["drill", "kill-master", "--duration", "inf"], "error: argument --duration: must be a number of seconds"),
        (["drill", "kill-master", "--duration", "nan"], "error: argument --duration: must be a number of seconds"),
        (["drill", "kill-master", "--duration", "121"], "a drill runs at most 120 s (it holds its history in memory)"),
        (["drill", "soak", "--duration", "604801"], "error: argument --duration: must be a number of seconds"),
        (["drill", "soak", "--seed", "x"], "--seed: 'x' is not a whole number"),
        (["drill", "soak", "--faults", "kill-master,teleport"], "unknown soak fault teleport"),
        (["drill", "soak", "--interval", "9-3"], "--interval: '9-3' must be LO-HI"),
        (["drill", "soak", "--workload", "set"], "a soak runs counter or register"),
        (["drill", "soak", "--repeat", "2"], "a soak is its own repetition"),
        (["drill", "kill-master", "--seed", "1"], "--seed: only `lab drill soak` takes it"),
        (["drill", "kill-master", "--repeat", "0"], "error: argument --repeat: must be a whole number of runs"),
        (["drill", "kill-master", "--rate", "nan"], "error: argument --rate: must be from 1/60 to 1e+06 operations/s"),
        (["drill", "kill-master", "--from", "redis-7.0"], "--from and --to belong to the rolling-upgrade drill"),
        (["drill", "rolling-upgrade"], "rolling-upgrade needs --to BUILD[,BUILD...]"),
        (["drill", "rolling-upgrade", "--to", "nope-1.0"], "--to nope-1.0: "),
        (
            ["drill", "rolling-upgrade", "--from", "redis-7.0", "--to", "redis-7.0"],
            "--to redis-7.0 after redis-7.0 is no upgrade: the same build",
        ),
        (["drill", "kill-master", "--report", "/sys/lab-report"], "--report /sys/lab-report: /sys is a system tree"),
        (["drill", "kill-master", "--report", "/etc/hostname"], "--report /etc/hostname is a file, not a directory"),
        (["drill", "kill-master", "--report", "/etc/hostname/r"], "--report /etc/hostname/r: /etc/hostname is a file"),
    ],
)
def test_bad_drill_arguments_are_usage_errors_before_any_lab(tmp_path: Path, args: list[str], message: str) -> None:
    result = run_lab(*args, home=tmp_path)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert result.stderr.startswith("lab drill: "), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert_no_lab_started(tmp_path)


def test_a_report_directory_with_files_in_it_is_refused(tmp_path: Path) -> None:
    # A second drill into one --report directory used to overwrite the first report file by file.
    report = tmp_path / "report"
    report.mkdir()
    (report / "report.json").write_text("{}")
    result = run_lab("drill", "kill-master", "--report", str(report), home=tmp_path / "home")
    assert result.returncode == 2 and f"--report {report} is not empty" in result.stderr, result.stderr
    assert (report / "report.json").read_text() == "{}"
    assert_no_lab_started(tmp_path / "home")
    fresh = tmp_path / "new" / "deeper"
    assert check_destination(fresh) == fresh
    assert not (tmp_path / "new").exists(), "checking a destination creates nothing"


@pytest.mark.parametrize("rate", ["0", "-5", "abc", "inf", "nan", "1e-300", "2e6"])
def test_a_rate_that_is_not_a_positive_number_is_a_usage_error(tmp_path: Path, rate: str) -> None:
    result = run_lab("drill", "kill-master", "--rate", rate, home=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and "argument --rate: " in lines[0], result.stderr
    assert_no_lab_started(tmp_path)


@pytest.mark.one_backend  # (the report and its gates are the drill's, whatever runs the lab)
@pytest.mark.one_server
def test_a_workload_outlasts_steps_that_outlast_it(healthy_lab, drill) -> None:
    # A safe failover takes a few seconds; with a 1 s workload the drill runs the workload on until
    # RECOVERY_TAIL_S after the failover returned, so whether the clients recovered stays visible.
    result = drill(healthy_lab, "failover", duration=1, clients=1)
    records = result.recorder.history.records
    done = next(r["t"] for r in records if r["type"] == "fault" and r["action"] == "revert")
    stop = next(r["t"] for r in records if r["type"] == "drill" and r["event"] == "stop")
    assert stop - done >= RECOVERY_TAIL_S * 1000 - 50, (done, stop)
    assert any(r["type"] == "ok" and r["t"] > done + 1000 for r in records), "writes after the failover"
    assert any("longer than the 1s workload" in note for note in result.findings.notes), result.findings.notes
    assert result.findings.lost == 0
