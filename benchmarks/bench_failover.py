"""Client-visible unavailability: SIGKILL of the master to the first write acknowledged through a
Sentinel-aware client, lab profile, over repeated drills. The floor it is compared with is
down-after-milliseconds: Sentinel cannot start a failover before it has passed."""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from lab import control, faults
from lab.drill import kill_master_unavailability

DRILLS = 10


def run(drills: int = DRILLS) -> list[tuple[str, float, float, str]]:
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
        home = Path(tmp)
        spec = control.up("bench-failover", "lab", "local", home).spec
        times = []
        try:
            for _ in range(drills):
                seconds, _old = kill_master_unavailability(spec)
                times.append(seconds)
                faults.heal(spec)
                control.wait_healthy(spec, timeout=30)
        finally:
            control.down(spec.name, home)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    floor = spec.down_after_ms / 1000
    print(f"kill -9 master -> first write (s), {drills} drills: {', '.join(f'{t:.2f}' for t in times)}")
    return [
        (f"failover unavailability median ({drills})", statistics.median(times), floor, "down-after floor"),
        (f"failover unavailability p95 ({drills})", p95, floor + 1.5, "target: down-after + 1.5 s"),
    ]
