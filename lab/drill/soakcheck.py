"""Check a soak's history in one pass, in bounded memory: per fault step, what the clients saw (the
longest time without an acknowledged write, the acknowledged increments lost, the failovers, how
long the lab took to converge after the heal), per second for the whole run, and per 100 ms around
each step (the zoomed panels of the report).

Lost increments are found as they happen: each worker INCRs a key of its own, and every INCR
answers the counter's new value, so an answer at or below one already acknowledged means the
counter went back, by that many acknowledged increments. The read after the last heal catches a
loss no later INCR showed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lab.drill.checker import GAP_MS, WRITES
from lab.drill.events import SETBACKS
from lab.drill.spool import Record

ZOOM_MS = 100.0
ZOOM_BEFORE_MS = 2000.0  # a step's panel starts this long before the fault
RECENT_BUCKETS = 2 * ZOOM_BEFORE_MS / ZOOM_MS  # kept of the last seconds, pruned to half when over
#: What a soak's unavailability counts: an acknowledged write.
ACKNOWLEDGED = frozenset((*WRITES, "cas"))


@dataclass
class StepFigures:
    index: int
    fault: str
    start_ms: float
    end_ms: float | None = None  # None: the soak stopped during it
    nodes: list[str] = field(default_factory=list)  # what the fault hit
    converged_ms: float | None = None  # from the heal to a converged lab
    unavailable_ms: float = 0.0  # the longest time without an acknowledged write that overlapped it
    lost: int = 0  # acknowledged increments lost, found during it (an INCR answered a lower value)
    failovers: int = 0
    #: role samples showing two masters, before the heal (a write-paused one not counted; the heal restarts the
    #: old master, which says master until the Sentinels turn it into a replica: the heal's, not the fault's)
    two_masters_ms: float = 0.0
    forks: int = 0  # the servers' own forks (AOF rewrite, RDB save) during it
    ok: int = 0
    failed: int = 0  # fail or info
    new_master: str | None = None
    #: what a Sentinel said when it would not act or gave a failover up, in order: "sentinel-1 +tilt"
    setbacks: list[str] = field(default_factory=list)
    #: per 100 ms from ZOOM_BEFORE_MS before the step: [t_ms, ok, failed]; role samples [t_ms, node, role]
    zoom: list[list[float]] = field(default_factory=list)
    roles: list[list[Any]] = field(default_factory=list)


@dataclass
class SoakFindings:
    duration_ms: float = 0.0
    operations: int = 0
    ok: int = 0
    failed: int = 0
    lost: int = 0
    lost_at_end: int = 0  # found only by the read after the last heal
    failovers: int = 0
    unavailable_ms: float = 0.0
    two_masters_ms: float = 0.0
    steps: list[StepFigures] = field(default_factory=list)
    #: the servers' own forks: [t_ms, node, what, fork_ms, step index or None (between steps)]
    stalls: list[list[Any]] = field(default_factory=list)
    per_second: list[list[Any]] = field(default_factory=list)  # [second, ok, failed, master]
    stopped: str | None = None  # why the soak stopped before its time (a lab that did not converge)
    partial: bool = False  # interrupted: the history ends where the interrupt came
    check_seconds: float = 0.0  # reading the history back and checking it

    def summary(self) -> dict[str, Any]:
        return {
            "duration_ms": round(self.duration_ms, 3),
            "steps": len(self.steps),
            "operations": self.operations,
            "ok": self.ok,
            "failed": self.failed,
            "lost": self.lost,
            "failovers": self.failovers,
            "unavailable_ms": round(self.unavailable_ms, 3),
            "two_masters_ms": round(self.two_masters_ms, 3),
            "forks": len(self.stalls),
            "fork_ms_max": max((s[3] for s in self.stalls), default=0.0),
            "converged_ms_max": max((s.converged_ms or 0.0 for s in self.steps), default=0.0),
            "stopped": int(self.stopped is not None),  # 1: a lab that did not converge (or a full disk) stopped it
            "partial": int(self.partial),
        }

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["summary"] = self.summary()
        return doc


@dataclass
class SoakResult:
    """What a soak was asked to do, and what its history showed (lab.drill.soak)."""

    findings: SoakFindings
    seed: int
    faults: tuple[str, ...]
    interval: tuple[float, float]
    duration: float
    workload: str
    linearizable: dict[str, Any] | None
    seconds: float
    history: Path


class _Pass:
    """The state of the one pass: the step in progress, the last acknowledged write, each counter's
    highest acknowledged value, the current second."""

    def __init__(self, findings: SoakFindings) -> None:
        self.f = findings
        self.step: StepFigures | None = None
        self.last_ack: float | None = None
        self.counters: dict[str, int] = {}
        self.second: list[Any] | None = None
        self.master: str | None = None
        self.switches: dict[str, int] = defaultdict(int)  # per Sentinel, during the step
        self.roles: dict[str, str] = {}  # each data node's last sampled role
        self.paused: set[str] = set()  # masters whose writes a safe failover holds
        self.last_role: float | None = None
        self.healing = False  # between a step's heal and its end: a restarted old master says master a moment
        self.zoom: dict[int, list[float]] = {}  # per 100 ms (absolute bucket), during the step
        self.recent: dict[int, list[float]] = {}  # the same, the last ZOOM_BEFORE_MS (seeds a step's panel)

    def feed(self, r: Record) -> None:
        t = r["t"]
        self.f.duration_ms = max(self.f.duration_ms, t)
        self._tick(t)
        kind = r["type"]
        if kind in ("ok", "fail", "info"):
            self._operation(r)
        elif kind == "step":
            self._step(r)
        elif kind == "role":
            self._role(r)
        elif kind == "background":
            self.f.stalls.append([t, r["node"], r["what"], r["fork_ms"], self.step.index if self.step else None])
            if self.step is not None:
                self.step.forks += r.get("forks", 1)
        elif kind == "pause":
            (self.paused.add if r["event"] == "start" else self.paused.discard)(r["node"])
        elif kind == "sentinel" and r["event"] == "+switch-master":
            self.switches[r["sentinel"]] += 1
            parts = str(r["data"]).split()
            if self.step is not None and len(parts) == 5:
                self.step.new_master = f"{parts[3]}:{parts[4]}"
        elif kind == "sentinel" and r["event"] in SETBACKS and self.step is not None:
            self.step.setbacks.append(f"{r['sentinel']} {r['event']}")
        elif kind == "fault" and r["action"] == "inject" and self.step is not None:
            self.step.nodes.append(r["node"])
        elif kind == "final":
            self._final(r)
        if kind == "role" and self.step is not None:
            self.step.roles.append([t, r["node"], r["role"]])

    def _role(self, r: Record) -> None:
        """Time with two masters: from one role sample to the next, while the samples so far say so."""
        t = r["t"]
        masters = [n for n, role in self.roles.items() if role == "master" and n not in self.paused]
        if len(masters) > 1 and self.last_role is not None and not self.healing:
            self.f.two_masters_ms += t - self.last_role
            if self.step is not None:
                self.step.two_masters_ms += t - self.last_role
        self.roles[r["node"]] = r["role"]
        self.last_role = t
        if r["role"] == "master":
            self.master = r["node"]

    def _tick(self, t: float) -> None:
        second = int(t // 1000)
        if self.second is None or second != self.second[0]:
            if self.second is not None:
                self.f.per_second.append(self.second)
            self.second = [second, 0, 0, self.master]

    def _operation(self, r: Record) -> None:
        """(Called for every operation of a soak, millions an hour: kept to plain lookups.)"""
        t, ok = r["t"], r["type"] == "ok"
        findings, second, step = self.f, self.second, self.step
        assert second is not None
        findings.operations += 1
        if ok:
            findings.ok += 1
            second[1] += 1
        else:
            findings.failed += 1
            second[2] += 1
        second[3] = self.master
        bucket = int(t // ZOOM_MS)
        for buckets in (self.recent, self.zoom) if step is not None else (self.recent,):
            counts = buckets.get(bucket)
            if counts is None:
                counts = buckets[bucket] = [0.0, 0.0]
            counts[0 if ok else 1] += 1
        if len(self.recent) > RECENT_BUCKETS:
            for old in [b for b in self.recent if b < bucket - RECENT_BUCKETS / 2]:
                del self.recent[old]
        if step is not None:
            step.ok += ok
            step.failed += not ok
        f = r.get("f")
        if not ok or f not in ACKNOWLEDGED:
            return
        if self.last_ack is not None and t - self.last_ack > GAP_MS:
            self._gap(self.last_ack, t)
        self.last_ack = t
        if f == "incr" and isinstance(value := r.get("value"), int):
            self._counter(r["key"], value)

    def _counter(self, key: str, value: int) -> None:
        highest = self.counters.get(key)
        if highest is not None and value <= highest:
            lost = highest - value + 1
            self.f.lost += lost
            if self.step is not None:
                self.step.lost += lost
            elif self.f.steps:
                self.f.steps[-1].lost += lost
        self.counters[key] = value  # (after a loss, the counter goes on from where it fell back to)

    def _gap(self, start: float, end: float) -> None:
        gap = end - start
        self.f.unavailable_ms = max(self.f.unavailable_ms, gap)
        for step in [*self.f.steps[-1:], *([self.step] if self.step else [])]:
            step_end = step.end_ms if step.end_ms is not None else float("inf")
            if start < step_end and end > step.start_ms:
                step.unavailable_ms = max(step.unavailable_ms, gap)

    def _step(self, r: Record) -> None:
        if r["event"] == "heal":
            self.healing = True
            return
        if r["event"] == "start":
            index, _, fault = str(r["step"]).partition(" ")
            self.step = StepFigures(int(index), fault, r["t"])
            self.switches.clear()
            since = int((r["t"] - ZOOM_BEFORE_MS) // ZOOM_MS)
            self.zoom = {b: list(c) for b, c in self.recent.items() if b >= since}
            return
        if self.step is None:
            return
        step, self.step = self.step, None
        self.healing = False
        step.end_ms = r["t"]
        step.converged_ms = r.get("converged_ms")
        step.failovers = max(self.switches.values(), default=0)
        self.f.failovers += step.failovers
        step.zoom = [[b * ZOOM_MS, *counts] for b, counts in sorted(self.zoom.items())]
        self.f.steps.append(step)

    def _final(self, r: Record) -> None:
        for key, value in r.get("counters", {}).items():
            highest = self.counters.get(key)
            if highest is not None and value < highest:
                self.f.lost_at_end += highest - value
                self.f.lost += highest - value

    def close(self) -> None:
        if self.second is not None:
            self.f.per_second.append(self.second)
        if self.step is not None:  # the soak stopped during a step
            self.step.failovers = max(self.switches.values(), default=0)
            self.f.failovers += self.step.failovers
            self.f.steps.append(self.step)


def check_soak(records: Iterable[Record]) -> SoakFindings:
    """One pass over a soak's records, in time order (lab.drill.spool.read_spool)."""
    findings = SoakFindings()
    state = _Pass(findings)
    for r in records:
        state.feed(r)
    state.close()
    return findings


def register_ops_stream(records: Iterable[Record]) -> Iterator[Any]:
    """The register workload's operations in the order of their calls, from records in time order,
    holding only the operations in flight (for lab.drill.linearizable.check)."""
    import heapq

    from lab.drill.linearizable import Op

    invoked: dict[Any, Record] = {}
    ready: list[tuple[float, int, Op]] = []
    seq = 0
    for r in records:
        kind = r["type"]
        if kind == "invoke" and r.get("f") in ("read", "write", "cas"):
            invoked[r["process"]] = r
        elif kind in ("ok", "fail", "info") and r["process"] in invoked:
            call = invoked.pop(r["process"])
            if kind != "fail":
                f, value = call["f"], call["value"]
                ret = r["value"] if f == "read" else r.get("swapped")
                arg = tuple(value) if f == "cas" else value
                seq += 1
                complete = r["t"] if kind == "ok" else None
                heapq.heappush(
                    ready, (call["t"], seq, Op(call["process"], call["key"], f, arg, ret, call["t"], complete))
                )
        elif kind == "final":
            for key, value in r.get("registers", {}).items():
                seq += 1
                heapq.heappush(ready, (r["t"], seq, Op(-1, key, "read", None, value, r["t"], r["t"])))
        oldest = min((c["t"] for c in invoked.values()), default=float("inf"))
        while ready and ready[0][0] < oldest:
            yield heapq.heappop(ready)[2]
    for call in invoked.values():  # never completed: may or may not have happened
        if call["f"] != "read":
            value = call["value"]
            arg = tuple(value) if call["f"] == "cas" else value
            seq += 1
            heapq.heappush(
                ready, (call["t"], seq, Op(call["process"], call["key"], call["f"], arg, None, call["t"], None))
            )
    while ready:
        yield heapq.heappop(ready)[2]
