"""The pytest plugin's report of a failed lab test (what CI shows): each lab's node logs, the Sentinels'
first, since what they decided is what a failed drill needs and a long output is cut from the end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.one_server]


def test_a_failed_lab_test_reports_its_labs_node_logs_sentinels_first(tmp_path: Path) -> None:
    (tmp_path / "test_fails.py").write_text("def test_fails(lab_factory):\n    lab_factory(tag='fail')\n    assert 0\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "PYTEST_"))}
    args = ["-p", "lab.pytest_plugin", "-p", "no:cacheprovider", "--lab-backend", "local"]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *args, "--basetemp", str(tmp_path / "t"), "test_fails.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    out = run.stdout
    assert run.returncode == 1 and "1 failed" in out, out[-2000:]
    assert "node logs" in out, out[-2000:]
    logs = out[out.index("node logs") :]
    order = [logs.index(f"--- {name} (") for name in ("sentinel-1", "sentinel-3", "redis-1", "redis-3")]
    assert order == sorted(order), logs[:3000]
    # The lab of the failed test is gone all the same.
    left = subprocess.run(["pgrep", "-f", str(tmp_path / "t")], capture_output=True, text=True).stdout
    assert left == ""
