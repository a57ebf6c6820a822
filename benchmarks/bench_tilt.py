"""`lab failover` with a Sentinel in TILT mode (its timer stalled for 2 s: it accepts SENTINEL FAILOVER
and does nothing for 30 s), local backend, the lab profile: the safe failover with sentinel-1 in TILT
against the same failover with no Sentinel in TILT, and against a bare SENTINEL FAILOVER sent to the
Sentinel in TILT (what `lab failover` did before it read ``sentinel_tilt``), all in the same run."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from benchmarks import Row
from lab import control
from lab.failover import failover, stall_into_tilt
from lab.spec import LabSpec
from lab.topology import node_client, observe
from lab.waits import wait_for

RUNS = 5


def _timed_failovers(spec: LabSpec, count: int, tilt: bool) -> list[float]:
    times = []
    for _ in range(count):
        control.wait_healthy(spec, timeout=30)
        if tilt:
            stall_into_tilt(spec, spec.sentinels[0])
        started = time.perf_counter()
        failover(spec)
        times.append(time.perf_counter() - started)
    return times


def _bare_failover_through_tilt(spec: LabSpec) -> float:
    """SENTINEL FAILOVER to sentinel-1 in TILT, then the time until the Sentinels name a new master."""
    control.wait_healthy(spec, timeout=30)
    old = observe(spec).master
    sentinel = spec.sentinels[0]
    stall_into_tilt(spec, sentinel)
    started = time.perf_counter()
    with node_client(spec, sentinel, timeout=2) as conn:
        conn.execute_command("SENTINEL", "FAILOVER", spec.master_name)

    def switched() -> tuple[bool, object]:
        named = observe(spec).master
        return named is not None and named != old, named

    wait_for(switched, what="the Sentinels to name a new master", timeout=60, interval=0.1)
    return time.perf_counter() - started


def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="lab-bench-tilt-") as tmp:
        home = Path(tmp)
        spec = control.up("bench-tilt", "lab", "local", home).spec
        try:
            plain = _timed_failovers(spec, RUNS, tilt=False)
            tilted = _timed_failovers(spec, RUNS, tilt=True)
            bare = _bare_failover_through_tilt(spec)
        finally:
            control.down(spec.name, home)
    print(
        f"lab failover (s), no TILT: {', '.join(f'{t:.2f}' for t in plain)}; "
        f"sentinel-1 in TILT: {', '.join(f'{t:.2f}' for t in tilted)}; bare SENTINEL FAILOVER to it: {bare:.2f}"
    )
    return [
        Row(
            f"lab failover, sentinel-1 in TILT, median ({RUNS})",
            statistics.median(tilted),
            statistics.median(plain),
            "s",
            "lab failover, no Sentinel in TILT",
        ),
        Row(
            f"lab failover, sentinel-1 in TILT, median ({RUNS})",
            statistics.median(tilted),
            bare,
            "s",
            "bare SENTINEL FAILOVER to sentinel-1 in TILT",
        ),
    ]
