"""A node's restart to a healthy lab, the step a rolling upgrade takes per node, local backend, the lab
profile: ten restarts of sentinel-2 and ten of a replica, in the same run. Both are bimodal: a Sentinel
reconnects a lost link at most once a second (sentinel.c's ``SENTINEL_PING_PERIOD``), so when one tried
while the node's port was closed it sees the node disconnected until it tries again, about a second
later; when none did, the lab is healthy a tenth of a second after the start."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from benchmarks import Row
from lab import control
from lab.backends import get_backend
from lab.spec import LabSpec, Node
from lab.topology import observe, problems

RUNS = 10
SETTLE_S = 1.5  # between restarts: every Sentinel's last reconnect attempt a second past
QUICK_S = 0.5  # a restart no Sentinel's reconnect attempt missed is healthy well within this


def restart_to_healthy(spec: LabSpec, node: Node) -> float:
    """Stop and start ``node`` (its data and config kept); seconds until the lab is healthy."""
    backend = get_backend(spec.backend)
    control.wait_healthy(spec, timeout=30)
    time.sleep(SETTLE_S)
    started = time.perf_counter()
    backend.stop(spec, [node])
    control.start_nodes(spec, backend, [node], fresh=False)
    while problems(spec, observe(spec)):
        time.sleep(0.01)
    return time.perf_counter() - started


def _line(name: str, times: list[float]) -> str:
    quick = sum(t < QUICK_S for t in times)
    return f"{name}: {', '.join(f'{t:.2f}' for t in times)} ({quick} of {len(times)} under {QUICK_S:g} s)"


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
    waited = [t for t in sentinel + replica if t >= QUICK_S]
    return [
        Row(f"Sentinel restart to healthy, median ({RUNS})", statistics.median(sentinel), statistics.median(replica),
            "s", f"a replica's restart to healthy, median ({RUNS})"),
        Row(f"a restart that waited for a Sentinel's reconnect, median ({len(waited)} of {2 * RUNS})",
            statistics.median(waited) if waited else 0.0, 1.0, "s", "a Sentinel's reconnect period (1 s)"),
    ]  # fmt: skip
