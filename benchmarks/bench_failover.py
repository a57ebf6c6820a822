"""Client-visible unavailability: SIGKILL of the master to the first write acknowledged through a
Sentinel-aware client, lab profile, over repeated drills, on each backend Docker allows. Compared
with down-after-milliseconds (Sentinel cannot start a failover before it) and, for compose, with
the local backend's figure from the same run."""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from benchmarks import Row, p95
from lab import control, faults, servers
from lab.docker import docker_unavailable
from lab.drill.steps import kill_master_unavailability

DRILLS = 10


def drills(backend: str, count: int = DRILLS, server: str = "system", tls: bool = False) -> list[float]:
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
        home = Path(tmp)
        spec = control.up(f"bench-failover-{backend}", "lab", backend, home, server=[server], tls=tls).spec
        times = []
        try:
            for _ in range(count):
                seconds, _old = kill_master_unavailability(spec)
                times.append(seconds)
                faults.heal(spec)
                control.wait_healthy(spec, timeout=30)
        finally:
            control.down(spec.name, home)
    print(
        f"{backend} {server}{' TLS' if tls else ''}: kill -9 master -> first write (s), {count} drills: "
        + ", ".join(f"{t:.2f}" for t in times)
    )
    return sorted(times)


def run() -> list[Row]:
    local = drills("local")
    floor = 1.0  # the lab profile's down-after-milliseconds
    rows: list[Row] = [
        Row(
            f"local failover unavailability median ({DRILLS})", statistics.median(local), floor, "s", "down-after floor"
        ),
        Row(
            f"local failover unavailability p95 ({DRILLS})", p95(local), floor + 1.5, "s", "target: down-after + 1.5 s"
        ),
    ]
    # The same drill on every other build here, side by side with the system's (Redis 7.0) median.
    system = servers.system()
    for build in servers.discover():
        if build == system:
            continue
        other = drills("local", server=build.name)
        rows.append(
            Row(
                f"local failover unavailability median ({DRILLS}), {build.name}",
                statistics.median(other),
                statistics.median(local),
                "s",
                f"{system.name} median, same run",
            )
        )
    if docker_unavailable() is None:
        compose = drills("compose")
        rows.append(
            Row(
                f"compose failover unavailability median ({DRILLS})",
                statistics.median(compose),
                statistics.median(local) + 0.5,
                "s",
                "target: local median + 0.5 s",
            )
        )
    return rows
