"""The pytest plugin's report of a failed lab test (what CI shows): each lab's node logs, the Sentinels'
first, since what they decided is what a failed drill needs and a long output is cut from the end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lab.pytest_plugin import require_server

pytestmark = [pytest.mark.integration, pytest.mark.one_server]


def running_in(directory: Path) -> list[int]:
    """Processes whose working directory is under ``directory`` (a lab's servers run in their node's)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and os.readlink(proc / "cwd").startswith(str(directory)):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_a_failed_lab_test_reports_its_labs_node_logs_sentinels_first(tmp_path: Path, lab_server: str) -> None:
    require_server(lab_server)
    (tmp_path / "test_fails.py").write_text("def test_fails(lab_factory):\n    lab_factory(tag='fail')\n    assert 0\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "PYTEST_"))}
    args = ["-p", "lab.pytest_plugin", "-p", "no:cacheprovider", "--lab-backend", "local", "--lab-server", lab_server]
    labs = tmp_path / "t"
    try:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", *args, "--basetemp", str(labs), "test_fails.py"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        left = running_in(labs)
    finally:  # (a timeout kills pytest, not the servers its lab started)
        for pid in running_in(labs):
            os.kill(pid, signal.SIGKILL)
    out = run.stdout
    assert run.returncode == 1 and "1 failed" in out, out[-2000:]
    assert "node logs" in out, out[-2000:]
    logs = out[out.index("node logs") :]
    order = [logs.index(f"--- {name} (") for name in ("sentinel-1", "sentinel-3", "redis-1", "redis-3")]
    assert order == sorted(order), logs[:3000]
    assert left == [], "the failed test's lab is gone all the same"
