"""How fast the CLI answers, as drills and scripts poll it: ``lab status --json`` of a running local lab (it
starts and stops its own) against a bare ``python -c 'import redis'``, and ``lab --help`` and ``lab list``
against ``python -c pass``, each a whole process, median of RUNS, the commands run in turns so that a busy
machine slows them alike; also the CPU time (user + sys, its children's too: the status's ``--version``
probe) each process used, which a busy machine stretches far less than the wall clock. Bytecode as an
installed package has it: the harness's PYTHONDONTWRITEBYTECODE is dropped and the caches go to a scratch
PYTHONPYCACHEPREFIX (nothing is written into the tree); each command runs once untimed first."""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import Row
from lab import control

RUNS = 9


def _lab() -> list[str]:
    """The installed `lab` entry point beside this Python (what a user runs), else ``python -m lab.cli``."""
    found = shutil.which("lab", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "lab.cli"]


def _cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _times(
    commands: dict[str, list[str]], env: dict[str, str], runs: int = RUNS
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall-clock and CPU seconds per run of each command (exit 0 required), the commands taking turns."""
    for argv in commands.values():  # untimed: writes the bytecode caches
        subprocess.run(argv, env=env, capture_output=True, check=True)
    wall: dict[str, list[float]] = {what: [] for what in commands}
    cpu: dict[str, list[float]] = {what: [] for what in commands}
    for _ in range(runs):
        for what, argv in commands.items():
            started, cpu_before = time.perf_counter(), _cpu()
            subprocess.run(argv, env=env, capture_output=True, check=True)
            wall[what].append(time.perf_counter() - started)
            cpu[what].append(_cpu() - cpu_before)
    return wall, cpu


def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="lab-bench-cli-") as tmp:
        home = Path(tmp) / "labs"
        spec = control.up("bench-cli", "lab", "local", home).spec
        try:
            env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
            env |= {"LAB_HOME": str(home), "PYTHONPYCACHEPREFIX": str(Path(tmp) / "pycache")}
            lab = _lab()
            wall, cpu = _times(
                {
                    "status": [*lab, "status", "--name", spec.name, "--json"],
                    "import redis": [sys.executable, "-c", "import redis"],
                    "help": [*lab, "--help"],
                    "list": [*lab, "list"],
                    "pass": [sys.executable, "-c", "pass"],
                },
                env,
            )
        finally:
            control.down(spec.name, home)
    ms = {what: statistics.median(values) * 1000 for what, values in wall.items()}
    cpu_ms = {what: statistics.median(values) * 1000 for what, values in cpu.items()}
    print(f"cli (ms, median of {RUNS}): " + ", ".join(f"{what} {value:.1f}" for what, value in ms.items()))
    print("cli CPU (ms, median): " + ", ".join(f"{what} {value:.1f}" for what, value in cpu_ms.items()))
    return [
        Row(
            f"`lab status --json`, running local lab, median ({RUNS})",
            ms["status"],
            ms["import redis"],
            "ms",
            "python -c 'import redis'",
        ),
        Row(
            f"`lab status --json`, CPU time, median ({RUNS})",
            cpu_ms["status"],
            cpu_ms["import redis"],
            "ms",
            "python -c 'import redis', CPU time",
        ),
        Row(f"`lab --help`, median ({RUNS})", ms["help"], ms["pass"], "ms", "python -c pass"),
        Row(f"`lab list`, median ({RUNS})", ms["list"], ms["pass"], "ms", "python -c pass"),
        Row(f"`lab status --json`, median ({RUNS})", ms["status"], 150.0, "ms", "target: 150 ms"),
    ]
