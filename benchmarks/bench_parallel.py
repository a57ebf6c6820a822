"""`lab clients --parallel 2` against the serial matrix, the same cells in the same run, local backend:
what running cells on two labs at once saves in wall time, and what it costs in accuracy (the cells'
longest unavailability, per scenario, median of the runs; parallel cells share the cores).

``PARALLEL_BENCH_RUNS`` sets the runs per cell (default 3).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks import Row
from lab import control
from lab.drill.fanout import run_parallel
from lab.drill.matrix import Cell, run_matrix

SCENARIOS = ["kill-master", "failover", "freeze-master", "kill-sentinel"]
RUNS = int(os.environ.get("PARALLEL_BENCH_RUNS", "3"))


def _medians(cells: list[Cell]) -> dict[str, float]:
    return {s: statistics.median(c.unavailable_s for c in cells if c.scenario == s) for s in SCENARIOS}


def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="lab-bench-parallel-") as tmp:
        home = Path(tmp)
        spec = control.up("bench-par", "lab", "local", home).spec
        try:
            started = time.perf_counter()
            serial = run_matrix(spec, ["redis-py"], SCENARIOS, ["defaults"], home / "serial", print, repeat=RUNS)
            serial_s = time.perf_counter() - started
            started = time.perf_counter()
            together = run_parallel(
                spec, home, ["redis-py"], SCENARIOS, ["defaults"], home / "parallel", 2, print, repeat=RUNS
            )
            parallel_s = time.perf_counter() - started
        finally:
            control.down(spec.name, home)
    print(f"parallel: {len(serial)} runs serial in {serial_s:.0f} s, on 2 labs in {parallel_s:.0f} s")
    ours, theirs = _medians(together), _medians(serial)
    rows = [Row(f"`lab clients --parallel 2`, {len(serial)} runs (s)", parallel_s, serial_s, "s", "serial")]
    rows += [
        Row(f"{scenario}: median unavailability, --parallel 2 (s)", ours[scenario], theirs[scenario], "s", "serial")
        for scenario in SCENARIOS
    ]
    return rows
