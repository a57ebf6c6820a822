"""Shared test helpers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


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


def parse_conf(text: str) -> dict[str, list[str]]:
    """Directive -> list of raw value strings (repeatable directives keep every occurrence)."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ")
        if key == "sentinel":
            sub, _, value = value.partition(" ")
            key = f"sentinel {sub}"
        found.setdefault(key, []).append(value)
    return found


def processes_under(path: Path) -> list[int]:
    """Live (non-zombie) processes running inside ``path`` (a lab's state dir).

    redis-server rewrites its process title, so the working directory (the node's ``dir``) tells.
    """
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cwd = os.readlink(proc / "cwd")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if (cwd == str(path) or cwd.startswith(f"{path}/")) and state != "Z":
            found.append(int(proc.name))
    return found


def running_parts(spec) -> list[str]:
    """What a lab still has running: processes (local) or containers and networks (compose)."""
    if spec.backend == "local":
        return [f"pid {pid}" for pid in processes_under(spec.base_dir)]
    from lab.backends.compose import project

    label = f"label=com.docker.compose.project={project(spec)}"
    containers = subprocess.run(
        ["docker", "ps", "-aq", "--filter", label], capture_output=True, text=True, check=False
    ).stdout.split()
    networks = subprocess.run(
        ["docker", "network", "ls", "-q", "--filter", label], capture_output=True, text=True, check=False
    ).stdout.split()
    volumes = subprocess.run(
        ["docker", "volume", "ls", "-q", "--filter", label], capture_output=True, text=True, check=False
    ).stdout.split()
    return (
        [f"container {c}" for c in containers] + [f"network {n}" for n in networks] + [f"volume {v}" for v in volumes]
    )
