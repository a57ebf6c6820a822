"""A node's restart to a healthy lab, local backend, the lab profile: ten restarts of sentinel-2 and ten of a
replica (data and config kept). Both are bimodal: a Sentinel reconnects a lost link at most once a second
(sentinel.c's ``SENTINEL_PING_PERIOD``), so when one tried while the node's port was closed it sees the node
disconnected until it tries again, about a second later; when none did, the lab is healthy a tenth of a
second after the start. Printed: each restart, and how many of each node waited; the rows compare the two
modes' medians, and the wait with that period."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from benchmarks import Row
from lab import control
from lab.backends import get_backend
from lab.spec import LabSpec, Node
from lab.topology import observe

RUNS = 10
SETTLE_S = 1.5  # between restarts: every Sentinel's last reconnect attempt a second past
QUICK_S = 0.5  # a restart no Sentinel's reconnect attempt missed is healthy well within this


def restart_to_healthy(spec: LabSpec, node: Node) -> float:
    """Stop and start ``node``; seconds until the lab is healthy (``wait_healthy`` polls every 10 ms)."""
    backend = get_backend(spec.backend)
    control.wait_healthy(spec, timeout=30)
    time.sleep(SETTLE_S)
    started = time.perf_counter()
    backend.stop(spec, [node])
    control.start_nodes(spec, backend, [node], fresh=False)
    control.wait_healthy(spec, timeout=30)
    return time.perf_counter() - started


def _line(name: str, times: list[float]) -> str:
    waited = sum(t >= QUICK_S for t in times)
    return f"{name}: {', '.join(f'{t:.2f}' for t in times)} ({waited} of {len(times)} waited)"


def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="lab-bench-restart-") as tmp:
        home = Path(tmp)
        spec = control.up("bench-restart", "lab", "local", home).spec
        try:
            sentinel = [restart_to_healthy(spec, spec.node("sentinel-2")) for _ in range(RUNS)]
            master = observe(spec).master
            replica_node = next(n for n in spec.redis_nodes if (n.host, n.port) != master)
            replica = [restart_to_healthy(spec, replica_node) for _ in range(RUNS)]
        finally:
            control.down(spec.name, home)
    print(f"restart -> healthy (s): {_line('sentinel-2', sentinel)}; {_line(replica_node.name, replica)}")
    every = sentinel + replica
    quick, waited = [t for t in every if t < QUICK_S], [t for t in every if t >= QUICK_S]
    if not quick or not waited:  # one mode only this time: nothing to compare
        return [Row(f"a restart to healthy, median ({len(every)})", statistics.median(every), 1.0, "s",
                    "a Sentinel's reconnect period (1 s)")]  # fmt: skip
    return [
        Row(f"a restart to healthy that waited for a Sentinel's reconnect, median ({len(waited)} of {len(every)})",
            statistics.median(waited), statistics.median(quick), "s",
            f"one no reconnect missed, median ({len(quick)} of {len(every)})"),
        Row("the wait: the two modes' medians apart", statistics.median(waited) - statistics.median(quick), 1.0,
            "s", "a Sentinel's reconnect period (1 s)"),
    ]  # fmt: skip
