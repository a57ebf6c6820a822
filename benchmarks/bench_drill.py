"""Drill recording, local backend.

- Recorder overhead: client throughput (4 workers writing through Sentinel for 3 s) with every
  operation recorded, against the same loop that records nothing. Target: >= 90 %.
- `lab drill kill-master` end to end from nothing (lab up, 10 s drill, heal, final read, report),
  as a user runs it. Target: under 15 s.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis

from benchmarks import Row
from lab import control
from lab.drill.history import History, Workers, Workload, sentinel_client
from lab.spec import LabSpec

SECONDS = 3.0
CLIENTS = 4


def _bare(spec: LabSpec) -> int:
    """The same writes through the same clients, nothing recorded."""
    stop = threading.Event()
    counts = [0] * CLIENTS

    def run(process: int) -> None:
        conn = sentinel_client(spec)
        seq = 0
        while not stop.is_set():
            seq += 1
            try:
                conn.set(f"bare:{process}:{seq}", seq)
                counts[process] += 1
            except redis.RedisError:
                pass
        conn.close()

    threads = [threading.Thread(target=run, args=(p,)) for p in range(CLIENTS)]
    for t in threads:
        t.start()
    time.sleep(SECONDS)
    stop.set()
    for t in threads:
        t.join()
    return sum(counts)


def _recorded(spec: LabSpec) -> int:
    history = History()
    workers = Workers(spec, history, Workload(kind="set", read_every=10**9, prefix="rec"), CLIENTS).start()
    time.sleep(SECONDS)
    workers.stop()
    return sum(1 for r in history.records if r["type"] == "ok")


def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
        home = Path(tmp)
        spec = control.up("bench-drill", "lab", "local", home).spec
        try:
            bare = min(_bare(spec), _bare(spec))
            recorded = max(_recorded(spec), _recorded(spec))
        finally:
            control.down(spec.name, home)
        env = {**os.environ, "LAB_HOME": str(home / "e2e")}
        started = time.perf_counter()
        cmd = [sys.executable, "-m", "lab.cli", "drill", "kill-master", "--name", "e2e", "--backend", "local"]
        subprocess.run([*cmd, "--report", str(home / "report")], env=env, check=True, capture_output=True)
        e2e = time.perf_counter() - started
        subprocess.run([sys.executable, "-m", "lab.cli", "down", "--name", "e2e"], env=env, check=True)
    print(f"drill: {recorded / SECONDS:.0f} ops/s recorded vs {bare / SECONDS:.0f} ops/s bare; e2e {e2e:.2f} s")
    return [
        Row(
            "writes per second with every operation recorded", bare / recorded, 1 / 0.9, "x", "target: >= 90 % of bare"
        ),
        Row("`lab drill kill-master` end to end (up, 10 s, heal, report)", e2e, 15.0, "s", "target: 15 s"),
    ]
