"""Degraded links (`lab degrade`), local backend, the lab profile: what was asked against what a client saw.

- delay: PING round trips from a client outside the lab (127.0.0.1) to the master, its "clients" links
  degraded one way (``--direction out``: the replies), minus the same PINGs' round trip with no fault;
- loss: the share of the master's reply packets the statistic rule dropped (its packet counter against the
  delayer queue's, which takes the rest);
- bandwidth: a 2 MB value written on the master, the time its replica takes to have it, on a link narrowed
  to 8 Mbit/s;
- cost: the delayer's CPU per packet it holds, against the master's own CPU per PING it answers.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks import Row
from lab import control, faults, links
from lab.backends.local import _chain
from lab.nodes import current_master, wait_caught_up
from lab.spec import LabSpec
from lab.topology import node_client

PINGS = 400
TICK = 100  # clock ticks a second (/proc/PID/stat)


def _rtts(spec: LabSpec, count: int = PINGS) -> list[float]:
    master = current_master(spec)
    times = []
    with node_client(spec, master, timeout=10) as conn:
        conn.ping()
        for _ in range(count):
            start = time.perf_counter()
            conn.ping()
            times.append((time.perf_counter() - start) * 1000)
    return sorted(times)


def _pct(values: list[float], share: float) -> float:
    return values[min(len(values) - 1, int(share * len(values)))]


def _degraded(spec: LabSpec, node: str, peers: list[str], **values: float) -> faults.Fault:
    degradation = links.Degradation(**values)
    return faults.inject(spec, "degrade", node, peers, (*degradation.settings(), ("direction", "out")))


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _counters(spec: LabSpec) -> tuple[int, int]:
    """Packets of the lab's chain: (dropped at random, sent to a delayer)."""
    listing = subprocess.run(["iptables", "-w", "-nvxL", _chain(spec)], capture_output=True, text=True).stdout
    dropped = queued = 0
    for line in listing.splitlines()[2:]:
        words = line.split()
        if len(words) > 2 and words[2] == "DROP":
            dropped += int(words[0])
        elif len(words) > 2 and words[2] == "NFQUEUE":
            queued += int(words[0])
    return dropped, queued


def _delays(spec: LabSpec, master: str) -> tuple[list[Row], str]:
    base = _rtts(spec)
    rows, notes = [], [f"no fault: p50 {_pct(base, 0.5):.3f} p99 {_pct(base, 0.99):.3f} ms"]
    for delay, jitter in ((10.0, 0.0), (50.0, 0.0), (100.0, 0.0), (50.0, 20.0)):
        fault = _degraded(spec, master, ["clients"], delay_ms=delay, jitter_ms=jitter)
        try:
            seen = _rtts(spec, PINGS if delay < 100 else PINGS // 2)
        finally:
            faults.revert(spec, fault)
        added = [t - _pct(base, 0.5) for t in seen]
        asked = f"--delay {delay:g}" + (f" --jitter {jitter:g}" if jitter else "")
        spread = f"p1 {_pct(added, 0.01):.2f} p50 {_pct(added, 0.5):.2f} p99 {_pct(added, 0.99):.2f}"
        notes.append(f"{asked}: added {spread}")
        rows.append(Row(f"degrade {asked}: added round trip, p50 (ms)", _pct(added, 0.5), delay, "ms", "asked"))
        worst = delay + jitter
        rows.append(
            Row(f"degrade {asked}: added round trip, p99 (ms)", _pct(added, 0.99), worst, "ms", "asked, at most")
        )
    return rows, "; ".join(notes)


def _loss(spec: LabSpec, master: str) -> Row:
    fault = _degraded(spec, master, ["clients"], loss=20.0, delay_ms=0.01)
    try:
        before = _counters(spec)
        with node_client(spec, current_master(spec), timeout=30) as conn:
            for _ in range(PINGS):
                conn.ping()
        dropped, queued = (now - then for now, then in zip(_counters(spec), before, strict=True))
    finally:
        faults.revert(spec, fault)
    return Row("degrade --loss 20: packets dropped (%)", 100 * dropped / (dropped + queued), 20.0, "%", "asked")


def _bandwidth(spec: LabSpec, master_name: str) -> Row:
    master = spec.node(master_name)
    replica = next(n for n in spec.redis_nodes if n != master)
    fault = _degraded(spec, master.name, [replica.name], rate=8e6)
    size = 2_000_000
    try:
        with node_client(spec, master, timeout=30) as primary, node_client(spec, replica, timeout=10) as copy:
            start = time.perf_counter()
            primary.set("bench:links:big", b"x" * size)
            wait_caught_up(primary, copy)
            elapsed = time.perf_counter() - start
            primary.delete("bench:links:big")
    finally:
        faults.revert(spec, fault)
    return Row("degrade --bandwidth 8mbit: replication (Mbit/s)", size * 8 / elapsed / 1e6, 8.0, "Mbit/s", "asked")


def _cost(spec: LabSpec, master_name: str) -> Row:
    """CPU per packet: the delayer's (it holds the replies) against the master's (it answers the PINGs)."""
    from lab.backends.local import binary_of
    from lab.procs import node_pid

    master = spec.node(master_name)
    files = spec.files(master)
    server, _ = node_pid(files.pidfile, files.dir, binary_of(spec, master))
    assert server is not None
    fault = _degraded(spec, master.name, ["clients"], delay_ms=0.01)
    count = 5_000
    try:
        with node_client(spec, master, timeout=30) as conn:  # (one PING at a time: one reply packet each)
            theirs, ours, before = _cpu_s(server), _cpu_s(fault.pid), _counters(spec)[1]
            for _ in range(count):
                conn.ping()
            theirs, ours = _cpu_s(server) - theirs, _cpu_s(fault.pid) - ours
            packets = _counters(spec)[1] - before
    finally:
        faults.revert(spec, fault)
    print(f"cost: {packets} packets held, delayer {ours:.2f} s CPU, master {theirs:.2f} s CPU for {count} PINGs")
    return Row(
        "delayer CPU per packet held (us)", ours / packets * 1e6, theirs / count * 1e6, "us", "master's per PING"
    )


def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="lab-bench-links-") as tmp:
        home = Path(tmp)
        spec = control.up("bench-links", "lab", "local", home).spec
        try:
            master = current_master(spec).name
            rows, notes = _delays(spec, master)
            rows += [_loss(spec, master), _bandwidth(spec, master), _cost(spec, master)]
        finally:
            control.down(spec.name, home)
    print(f"round trips (ms): {notes}")
    print(f"median of the medians: {statistics.median(r.ours for r in rows if 'p50' in r.what):.2f} ms")
    return rows
