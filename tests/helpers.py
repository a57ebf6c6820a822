"""Helpers the tests share (fixtures live in lab/pytest_plugin.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab import procs
from lab.clients import CLIENTS
from lab.spec import LabSpec


def run_lab(
    *args: str, home: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the real `lab` CLI in a subprocess, as a user would."""
    full_env = {**os.environ, "LAB_HOME": str(home), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "lab.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )


def running_parts(spec: LabSpec) -> list[str]:
    """What a lab still has running: server processes (local) or containers, networks, volumes (compose)."""
    if spec.backend == "local":
        return [f"pid {pid}" for pid in procs.servers_under(spec.base_dir)]
    from lab.backends.compose import project

    label = f"label=com.docker.compose.project={project(spec)}"
    found = []
    for kind, listing in (
        ("container", ["docker", "ps", "-aq"]),
        ("network", ["docker", "network", "ls", "-q"]),
        ("volume", ["docker", "volume", "ls", "-q"]),
    ):
        ids = subprocess.run([*listing, "--filter", label], capture_output=True, text=True, check=False).stdout.split()
        found += [f"{kind} {i}" for i in ids]
    return found


def require_client(name: str) -> None:
    """Skip a test whose client library cannot run here (a failure under LAB_REQUIRE_NODE=1)."""
    why = CLIENTS[name].missing()
    if why:
        if os.environ.get("LAB_REQUIRE_NODE") == "1":
            pytest.fail(f"LAB_REQUIRE_NODE=1 but {name} cannot run: {why}")
        pytest.skip(why)
