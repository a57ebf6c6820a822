"""`lab drill` as CI uses it: the gates as JUnit XML, and a lab the drill had to start is left running
with a word on how to stop it (real servers, local backend)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.helpers import run_lab

pytestmark = pytest.mark.integration


@pytest.mark.smoke
def test_a_drill_that_started_its_lab_says_so_and_writes_its_gates_as_junit(tmp_path: Path) -> None:
    home, junit = tmp_path / "home", tmp_path / "ci" / "drill.xml"
    junit.parent.mkdir()
    try:
        ran = run_lab(
            "drill", "kill-master", "--name", "ju", "--backend", "local", "--duration", "3",
            "--fail-on", "lost>0", "--fail-on", "ok>0", "--junit", str(junit), home=home, timeout=180,
        )  # fmt: skip
        assert ran.returncode == 1, ran.stdout + ran.stderr  # ok>0 holds: some writes were acknowledged
        assert "lab drill: lab ju was started for this drill and is still running: `lab down --name ju`" in ran.stderr
        suite = ET.parse(junit).getroot().find("testsuite")
        assert suite is not None and suite.get("name") == "lab drill kill-master"
        cases = {c.get("name"): c for c in suite.iter("testcase")}
        assert list(cases) == ["lost>0", "ok>0"] and suite.get("tests") == "2"
        ok = next(p.get("value") for p in suite.iter("property") if p.get("name") == "ok")
        failure = cases["ok>0"].find("failure")
        assert failure is not None and failure.get("message") == f"finding over the gate: ok={ok} > 0"
        lost = next(p.get("value") for p in suite.iter("property") if p.get("name") == "lost")
        assert (cases["lost>0"].find("failure") is not None) == (int(str(lost)) > 0)
        assert suite.get("failures") == str(sum(c.find("failure") is not None for c in cases.values()))
        again = run_lab(
            "drill", "failover", "--name", "ju", "--duration", "2", "--junit", str(junit), home=home, timeout=120
        )
        assert again.returncode == 0, again.stderr
        assert "was started for this drill" not in again.stderr, "the second drill found the lab running"
        only = ET.parse(junit).getroot().find("testsuite")
        assert only is not None and [c.get("name") for c in only.iter("testcase")] == ["ran"]
        assert not list(junit.parent.glob(".junit-*")), "no temporary file is left beside the report"
    finally:
        down = run_lab("down", "--name", "ju", home=home, timeout=60)
        assert down.returncode == 0, down.stderr


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("{tmp}", "--junit {tmp} is a directory, not a file"),
        ("{tmp}/no/such/dir/x.xml", "--junit {tmp}/no/such/dir/x.xml: {tmp}/no/such/dir is not a directory"),
        ("/proc/lab-junit.xml", "--junit /proc/lab-junit.xml: cannot write there (No such file or directory)"),
    ],
)
def test_a_junit_file_that_cannot_be_written_is_refused_before_any_lab(
    tmp_path: Path, where: str, message: str
) -> None:
    path = where.format(tmp=tmp_path)
    result = run_lab("drill", "kill-master", "--junit", path, home=tmp_path / "home")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"lab drill: {message.format(tmp=tmp_path)}"
    assert not (tmp_path / "home" / "default").exists(), "no lab was started for bad arguments"
