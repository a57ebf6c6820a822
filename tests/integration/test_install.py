"""A plain (non-editable) install works outside the checkout: the wheel carries the templates,
profiles, lifecycle scripts and compose file, and every console script runs from it.

It also installs beside progressbar2, in either order: python_utils/ installs as ``redis_ha_admin``
(``python_utils`` is PyPI's python-utils, which progressbar2 needs: one install overwrote the other)
and scripts/monitoring/ as ``redis_ha_health`` (no generic ``monitoring``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lab.pytest_plugin import lab_name
from tests.helpers import SLOW_OK

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
#: Every top-level import name the distribution installs.
TOP_LEVEL = ["lab", "redis_ha_admin", "redis_ha_health"]
#: Pinned like constraints.txt, so a new release cannot fail this test.
PROGRESSBAR = ("progressbar2==4.6.0", "python-utils==4.1.4")
#: Run by the venv's python outside the checkout: both packages import, python_utils is PyPI's, and
#: which distribution owns which top-level name (from each one's RECORD and top_level.txt).
PROBE = """
import importlib.metadata as md, json
import progressbar, python_utils, python_utils.__about__, python_utils.converters
import redis_ha_admin.cli, redis_ha_health.check_redis_health
progressbar.ProgressBar
ours = md.distribution("redis-ha-lab")
record = {f.parts[0].removesuffix(".py") for f in ours.files if f.parts[0] != ".." and ".dist-info" not in f.parts[0]}
print(json.dumps({
    "record": sorted(record),
    "top_level": sorted((ours.read_text("top_level.txt") or "").split()),
    "python_utils": md.packages_distributions().get("python_utils"),
    "python_utils_about": python_utils.__about__.__package_name__,
    "files": [m.__file__ for m in (python_utils, redis_ha_admin, redis_ha_health)],
}))
"""


def sh(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    result = subprocess.run(
        list(args), cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def not_source(folder: str, names: list[str]) -> set[str]:
    """What a copy of the checkout leaves out: the venv, git, caches, Node modules and build output (a
    stale build/lib would put modules that no longer exist into the wheel)."""
    top = {".git", ".venv", ".lab", "build", "site", "typecheck"} if Path(folder) == REPO else set()
    return {n for n in names if n in top or n in {"__pycache__", "node_modules"} or n.endswith(".egg-info")}


def assert_beside_progressbar(bin_: Path, venv: Path, work: Path) -> None:
    found = json.loads(sh(str(bin_ / "python"), "-I", "-c", PROBE, cwd=work))
    assert found["record"] == found["top_level"] == TOP_LEVEL, found
    assert found["python_utils"] == ["python-utils"] and found["python_utils_about"] == "python-utils", found
    assert all(path.startswith(str(venv)) for path in found["files"]), "everything comes from the install"
    for tool in ("redis-admin", "check-redis-health"):
        assert sh(str(bin_ / tool), "--help", cwd=work).startswith("usage:"), tool


def test_the_install_runs_outside_the_checkout_beside_progressbar2(tmp_path: Path) -> None:
    src, venv, work, host = tmp_path / "src", tmp_path / "venv", tmp_path / "elsewhere", tmp_path / "monitoring-host"
    shutil.copytree(REPO, src, ignore=not_source)
    work.mkdir()
    host.mkdir()
    plain = host / "check_redis_health.py"
    shutil.copy(REPO / "scripts" / "monitoring" / plain.name, plain)
    sh(sys.executable, "-m", "venv", str(venv), cwd=work)
    bin_ = venv / "bin"
    # The pinned versions make/CI install (constraints.txt), so a new release elsewhere cannot fail this test.
    pip = [str(bin_ / "pip"), "install", "-q", "--disable-pip-version-check", "-c", str(REPO / "constraints.txt")]
    sh(*pip, *PROGRESSBAR, cwd=work)
    # One wheel, built from the copy (in pip's isolated build environment), installed both times below.
    sh(str(bin_ / "pip"), "wheel", "-q", "--disable-pip-version-check", "--no-deps", "-w", "wheels", str(src), cwd=work)
    wheel = str(next((work / "wheels").glob("redis_ha_lab-*.whl")))
    sh(*pip, wheel, cwd=work)  # over progressbar2
    assert_beside_progressbar(bin_, venv, work)
    # What `lab deploy` plays ships with it.
    shipped = "from lab import ANSIBLE_DIR; print((ANSIBLE_DIR / 'roles/redis_ha/tasks/main.yml').is_file())"
    assert sh(str(bin_ / "python"), "-c", shipped, cwd=work).strip() == "True"

    sh(str(bin_ / "lab"), "render", "--profile", "production", "--out", "prod", cwd=work)
    assert "replicaof redis-1.internal 6379" in (work / "prod" / "redis-2" / "redis.conf").read_text()

    name, env = lab_name("installed"), {"LAB_HOME": str(work / "labs"), "PATH": f"{bin_}:{os.environ['PATH']}"}
    try:
        sh(str(bin_ / "lab"), "up", "--backend", "local", "--name", name, cwd=work, env=env)
        exports = sh(str(bin_ / "lab"), "env", "--name", name, cwd=work, env=env)
        flags = " ".join(["--format", "json", *SLOW_OK])
        script = f"{exports}\nredis-admin pubsub publish installed hello && check-redis-health {flags}"
        doc = json.loads(sh("bash", "-c", script, cwd=work, env=env).split("\n", 1)[1])
        assert doc["status"] == "OK", doc
        # The same check by the plain file, as a monitoring host runs it.
        doc = json.loads(sh("bash", "-c", f"{exports}\npython {plain} {flags}", cwd=host, env=env))
        assert doc["status"] == "OK", doc
    finally:
        sh(str(bin_ / "lab"), "down", "--name", name, cwd=work, env=env)

    sh(str(bin_ / "pip"), "uninstall", "-y", "-q", "redis-ha-lab", "progressbar2", "python-utils", cwd=work)
    # A monitoring host has redis-py and the one file, not the package.
    absent = subprocess.run([str(bin_ / "python"), "-I", "-c", "import redis_ha_health"], cwd=work, capture_output=True)
    assert absent.returncode == 1 and b"No module named 'redis_ha_health'" in absent.stderr
    assert sh(str(bin_ / "python"), "-I", str(plain), "--help", cwd=host).startswith("usage:")
    sh(*pip, wheel, cwd=work)
    sh(*pip, *PROGRESSBAR, cwd=work)  # over ours
    assert_beside_progressbar(bin_, venv, work)
