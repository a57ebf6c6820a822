"""`lab status --json` of a running lab, `lab list` and `lab --help` load what they use and nothing heavy:
drills and scripts poll them, and redis-py, Jinja2, the profile models (pydantic, YAML), rich, matplotlib,
the Docker SDK and tenacity each cost tens of milliseconds to import (docs/benchmarks.md). Checked on the real
processes (``-X importtime`` lists every module a process imports), not by timing them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.spec import LabSpec

pytestmark = pytest.mark.integration

#: Top-level packages none of these commands may import.
HEAVY = {"redis", "jinja2", "pydantic", "pydantic_core", "yaml", "rich", "matplotlib", "docker", "tenacity", "asyncio"}
#: lab's own modules that pull those in (or are the lifecycle, the faults, lint, the drill).
HEAVY_LAB = ("lab.control", "lab.faults", "lab.nodes", "lab.profile", "lab.render", "lab.lint", "lab.drill")


def imported(*args: str, home: Path) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """Every module the real `lab ARGS` process imported, and how it ended."""
    env = {**os.environ, "LAB_HOME": str(home)}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "lab.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    lines = [line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")]
    return set(lines[1:]), done  # the first line is the header


def too_heavy(modules: set[str], needed: frozenset[str] = frozenset()) -> list[str]:
    """The heavy modules loaded, but for the ``needed`` ones (a compose lab's status asks the engine: docker)."""
    return sorted(m for m in modules if m.split(".")[0] in HEAVY - needed or m.startswith(HEAVY_LAB))


@pytest.mark.one_server
def test_status_list_and_help_import_nothing_heavy(lab: LabSpec, lab_home: Path) -> None:
    modules, done = imported("status", "--name", lab.name, "--json", home=lab_home)
    assert done.returncode == 0 and '"healthy": true' in done.stdout, done.stderr[-2000:]
    assert "lab.resp" in modules and "lab.status" in modules, "the check sees the status path"
    # (CI, compose: the backend imported redis-py at its top for the start-up ping; only docker is needed)
    assert too_heavy(modules, frozenset({"docker"} if lab.backend == "compose" else ())) == []

    modules, done = imported("list", home=lab_home)
    assert done.returncode == 0 and lab.name in done.stdout
    assert too_heavy(modules) == []

    modules, done = imported("--help", home=lab_home)
    assert done.returncode == 0 and done.stdout.startswith("usage: lab")
    assert too_heavy(modules) == []


def test_status_of_a_lab_that_is_not_running_is_one_line_and_light(lab_home: Path) -> None:
    modules, done = imported("status", "--name", "never-started", "--json", home=lab_home)
    assert done.returncode == 2 and done.stdout == ""
    assert [line for line in done.stderr.splitlines() if not line.startswith("import time:")] == [
        f"lab status: lab 'never-started' is not running (no state in {lab_home / 'never-started'})"
    ]
    assert too_heavy(modules) == []
