"""A plain (non-editable) install works outside the checkout: the wheel carries the templates,
profiles, lifecycle scripts and compose file, and every console script runs from it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.pytest_plugin import lab_name
from tests.helpers import SLOW_OK

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


def sh(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    result = subprocess.run(
        list(args), cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_the_wheel_runs_outside_the_checkout(tmp_path: Path) -> None:
    dist, venv, work = tmp_path / "dist", tmp_path / "venv", tmp_path / "elsewhere"
    work.mkdir()
    sh(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(REPO), cwd=work)
    [wheel] = dist.glob("redis_ha_lab-*.whl")
    sh(sys.executable, "-m", "venv", str(venv), cwd=work)
    # The pinned versions make/CI install (constraints.txt), so a new release elsewhere cannot fail this test.
    pip = [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
    sh(*pip, "-c", str(REPO / "constraints.txt"), str(wheel), cwd=work)
    bin_ = venv / "bin"
    where = sh(str(bin_ / "python"), "-c", "import lab, monitoring; print(lab.CONF_DIR, monitoring.__file__)", cwd=work)
    assert all(path.startswith(str(venv)) for path in where.split()), "everything comes from the install"

    sh(str(bin_ / "lab"), "render", "--profile", "production", "--out", "prod", cwd=work)
    assert "replicaof redis-1.internal 6379" in (work / "prod" / "redis-2" / "redis.conf").read_text()

    name, env = lab_name("installed"), {"LAB_HOME": str(work / "labs"), "PATH": f"{bin_}:{os.environ['PATH']}"}
    try:
        sh(str(bin_ / "lab"), "up", "--backend", "local", "--name", name, cwd=work, env=env)
        exports = sh(str(bin_ / "lab"), "env", "--name", name, cwd=work, env=env)
        check = " ".join(["check-redis-health", "--format", "json", *SLOW_OK])
        script = f"{exports}\nredis-admin pubsub publish installed hello && {check}"
        doc = json.loads(sh("bash", "-c", script, cwd=work, env=env).split("\n", 1)[1])
        assert doc["status"] == "OK", doc
    finally:
        sh(str(bin_ / "lab"), "down", "--name", name, cwd=work, env=env)
