"""`lab drill` as CI uses it: the gates as JUnit XML, and a lab the drill had to start is left running
with a word on how to stop it (real servers, local backend)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from lab.pytest_plugin import lab_name
from tests.helpers import assert_no_lab_started, run_lab

pytestmark = pytest.mark.integration


@pytest.mark.smoke
def test_a_drill_that_started_its_lab_says_so_and_writes_its_gates_as_junit(tmp_path: Path) -> None:
    home, junit = tmp_path / "home", tmp_path / "ci" / "drill.xml"
    junit.parent.mkdir()
    name = lab_name("ju")  # (its addresses follow from the name: unique to this test process)
    try:
        ran = run_lab(
            "drill", "kill-master", "--name", name, "--backend", "local", "--duration", "3", "--rate", "1000",
            "--fail-on", "lost>0", "--fail-on", "ok>0", "--junit", str(junit), home=home, timeout=180,
        )  # fmt: skip
        assert ran.returncode == 1, ran.stdout + ran.stderr  # ok>0 holds: some writes were acknowledged
        started = f"lab drill: lab {name} was started for this command and is still running: `lab down --name {name}`"
        assert started in ran.stderr
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
            "drill",
            "failover",
            "--name",
            name,
            "--duration",
            "2",
            "--rate",
            "1000",
            "--junit",
            str(junit),
            home=home,
            timeout=120,
        )
        assert again.returncode == 0, again.stderr
        assert "was started for this command" not in again.stderr, "the second drill found the lab running"
        only = ET.parse(junit).getroot().find("testsuite")
        assert only is not None and [c.get("name") for c in only.iter("testcase")] == ["ran"]
        assert not list(junit.parent.glob(".junit-*")), "no temporary file is left beside the report"
    finally:
        down = run_lab("down", "--name", name, home=home, timeout=60)
        assert down.returncode == 0, down.stderr


def _fifo(tmp: Path) -> Path:
    os.mkfifo(tmp / "fifo")
    return tmp / "fifo"


def _link(tmp: Path) -> Path:
    (tmp / "real.xml").write_text("kept")
    (tmp / "link.xml").symlink_to(tmp / "real.xml")
    return tmp / "link.xml"


def _dangling(tmp: Path) -> Path:
    (tmp / "dangling.xml").symlink_to(tmp / "no" / "such" / "x.xml")
    return tmp / "dangling.xml"


def _lab_state(tmp: Path) -> Path:
    (tmp / "home" / "other").mkdir(parents=True)
    (tmp / "home" / "other" / "state.json").write_text("{}")  # what makes a directory of the home a lab
    return tmp / "home" / "other" / "drill.xml"


CASES: list[tuple[Callable[[Path], Path], str]] = [
    (lambda tmp: tmp, "--junit {p} is a directory, not a file"),
    (lambda tmp: tmp / "no" / "such" / "x.xml", "--junit {p}: {tmp}/no/such is not a directory"),
    (lambda tmp: Path(""), "--junit '.': name a file"),
    (lambda tmp: Path("/dev/null"), "--junit /dev/null is not a regular file (a device, a FIFO or a socket)"),
    (
        lambda tmp: Path("/proc/self/status"),
        "--junit /proc/self/status: /proc is a system tree: write it elsewhere",
    ),
    (_fifo, "--junit {p} is not a regular file (a device, a FIFO or a socket)"),
    (_link, "--junit {p} is a symbolic link: name the file itself"),
    (_dangling, "--junit {p} is a symbolic link: name the file itself"),
    (_lab_state, "--junit {p}: that is inside lab other's directory: write it elsewhere"),
]


@pytest.mark.parametrize(("where", "message"), CASES)
def test_a_junit_file_that_cannot_be_written_is_refused_before_any_lab(
    tmp_path: Path, where: Callable[[Path], Path], message: str
) -> None:
    # (hostile tour: --junit replaced /dev/null and a lab's state.json by its XML, and hung on a FIFO)
    path = where(tmp_path)
    result = run_lab("drill", "kill-master", "--junit", str(path), home=tmp_path / "home", timeout=30)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"lab drill: {message.format(p=path, tmp=tmp_path)}"
    assert_no_lab_started(tmp_path / "home")
    assert Path("/dev/null").is_char_device()
    if where is _link:
        assert (tmp_path / "link.xml").is_symlink() and (tmp_path / "real.xml").read_text() == "kept"


def test_a_report_directory_in_a_lab_or_a_system_tree_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "other").mkdir(parents=True)
    (home / "other" / "state.json").write_text("{}")
    for where, why in (
        (home / "other" / "rep", "that is inside lab other's directory"),
        (home / ".locks" / "rep", "that is the lab home's locks"),
        (Path("/dev/lab-rep"), "/dev is a system tree"),
    ):
        result = run_lab("drill", "kill-master", "--report", str(where), home=home)
        assert result.returncode == 2 and result.stderr.strip() == (
            f"lab drill: --report {where}: {why}: write it elsewhere"
        ), result.stderr
        assert not where.exists()
    # the lab the command would start, in the directory it would start it in: an interrupt removing the
    # unfinished report once emptied that lab (a hostile review); every command that writes a report refuses it
    for command in (
        ("drill", "kill-master"),
        ("clients",),
        ("sweep", "--set", "down-after-milliseconds=500", "--loss", "5"),
    ):
        where = home / "fresh" / "rep"
        result = run_lab(*command, "--name", "fresh", "--report", str(where), home=home)
        assert result.returncode == 2 and result.stderr.strip() == (
            f"lab {command[0]}: --report {where}: that is inside lab fresh's directory: write it elsewhere"
        ), result.stderr
        assert not (home / "fresh").exists()
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
    result = run_lab("drill", "kill-master", "--report", str(tmp_path / "gone"), home=home)
    assert result.returncode == 2 and "is a symbolic link: name the directory itself" in result.stderr


@pytest.mark.one_backend  # (the odds are the drill's arithmetic)
@pytest.mark.one_server  # (the repeat's runs, odds and gates do not depend on the build)
def test_a_repeated_drill_gives_each_findings_odds_and_keeps_every_run(
    healthy_lab, lab_home: Path, tmp_path: Path
) -> None:
    import json

    report = tmp_path / "repeat"
    args = ("drill", "kill-sentinel", "--name", healthy_lab.name, "--duration", "1", "--repeat", "2", "--rate", "1000")
    ran = run_lab(
        *args, "--report", str(report), "--fail-on", "failovers>0", "--fail-on", "ok>0", home=lab_home, timeout=180
    )
    assert ran.returncode == 1, ran.stdout + ran.stderr  # ok>0 holds in every run
    gated = ran.stderr.strip().splitlines()[-1]
    assert gated.startswith("lab drill: findings over the gate: ok=") and gated.endswith("> 0 (in 2 of 2 runs)")
    assert "in how many runs" in ran.stdout and "every run" in ran.stdout
    doc = json.loads((report / "repeat.json").read_text())
    assert doc["runs"] == 2 and doc["odds"]["failovers"] == 0 and doc["odds"]["ok"] == 2 and len(doc["each"]) == 2
    assert all((report / f"run-{k}" / "report.json").is_file() for k in (1, 2))
    for bad in ("0", "101", "1.5", "nan"):
        refused = run_lab("drill", "kill-sentinel", "--name", healthy_lab.name, "--repeat", bad, home=lab_home)
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
