"""Check a drill's history the way Jepsen checks one: what the clients were told against what the
servers ended up holding. Pure functions over records (lab.drill.history's format): no server needed.

Findings for a set workload (unique keys) and a counter workload (INCR):
- lost: writes acknowledged and absent after the heal (counter: acknowledged increments missing);
- indeterminate: writes whose outcome the client did not learn (timeouts), and how many survived;
- errored but applied: writes the client was told failed that are there after all;
- stale reads: reads that returned other than what a write acknowledged before the read was sent
  wrote; reads served by a node the Sentinels had already switched away from that returned the
  right value are counted apart (``old_master_reads``): not stale, and not a fault;
- split brain: two nodes acknowledging writes in the same 100 ms, and samples with two masters while
  the workload ran (the heal after it restarts nodes: not the scenario's doing); a master whose
  writes a safe failover held (``pause`` records) takes no write, and is counted apart
  (``paused_master``) instead;
- lost acknowledged: when the lost writes were acknowledged, first to last, and where that lies from
  the moment the first fault took effect (its ``applied`` mark, not its start: an isolation's rules
  take seconds to apply); a SIGKILLed async master takes only the tail it had not yet sent on: this
  window ends at the kill;
- unavailability: gaps between acknowledged writes longer than 100 ms (the longest, and their total);
  the nothing-kept window also counts acknowledged writes that were later lost as not kept;
- failovers: master switches the Sentinels announced, and the epochs they reached;
- steps (a multi-step drill such as rolling-upgrade): per step, the longest unavailability that
  overlapped it and the acknowledged writes lost that were acknowledged during it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from lab.drill.consistency import check_lists, check_registers
from lab.drill.events import raced_promotions, setbacks, switches
from lab.drill.history import COMPLETIONS, OPERATIONS, Record, not_operations

#: The findings that say something went wrong (a gate on any of them fails a drill that had it); the
#: rest describe what happened (failovers, unavailability, reads from a demoted master).
ERROR_FINDINGS = (
    "lost",
    "errored_but_applied",
    "duplicated",
    "stale_reads",
    "anomalies",
    "split_brain_ms",
    "two_masters_ms",
)

BUCKET_MS = 100.0
GAP_MS = 100.0  # with several workers, acknowledged writes normally follow each other within a few ms
WRITES = ("write", "incr", "rpush")


@dataclass
class Window:
    start_ms: float
    end_ms: float
    detail: str = ""

    @property
    def ms(self) -> float:
        return round(self.end_ms - self.start_ms, 3)


@dataclass
class FaultSpan:
    """One injected fault: when its injection started, when it had taken effect (the start, for a fault
    with no ``applied`` mark), and when it was undone (None: it never was)."""

    fault: str
    node: str
    start_ms: float
    applied_ms: float
    end_ms: float | None = None
    how: str = ""  # a variant (lab.drill.history.Recorder.fault): ``out``/``in`` for a one-way isolation


def fault_spans(records: Iterable[Record]) -> list[FaultSpan]:
    """The faults of a history (lab.drill.history's ``fault`` records), in the order they were injected."""
    spans: list[FaultSpan] = []
    for r in sorted((r for r in records if r["type"] == "fault"), key=lambda r: r["t"]):
        same = [s for s in spans if (s.fault, s.node) == (r["fault"], r["node"]) and s.end_ms is None]
        if r["action"] == "inject":
            spans.append(FaultSpan(r["fault"], r["node"], r["t"], r["t"], how=r.get("how", "")))
        elif r["action"] == "applied" and same:
            same[-1].applied_ms = r["t"]
        elif r["action"] == "revert" and same:
            same[0].end_ms = r["t"]
    return spans


@dataclass
class Findings:
    workload: str
    duration_ms: float
    operations: dict[str, dict[str, int]]  # f -> {"ok", "fail", "info"}
    errors: dict[str, int]  # error class -> count
    lost: int
    lost_examples: list[str]
    indeterminate: int
    indeterminate_survived: int
    errored_but_applied: int
    duplicated: int  # list workload: values that landed more than once (a client resent a write)
    stale_reads: int
    stale_read_examples: list[str]
    split_brain: list[Window]
    two_masters: list[Window]
    unavailable: list[Window]
    nothing_kept: list[Window]
    failovers: list[dict[str, Any]]  # {"t", "old", "new"}
    epochs: list[int]
    final_node: str | None
    notes: list[str] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(
        default_factory=list
    )  # {"step", "start_ms", "end_ms", "unavailable_ms", "lost"}
    lost_acked: Window | None = None  # when the lost writes were acknowledged (None: none lost, or a counter)
    old_master_reads: int = 0  # right values read from a node no longer master (not stale)
    #: register and list workloads: the linearizability or list-append verdict (lab.drill.consistency)
    consistency: dict[str, Any] | None = None
    #: the servers' own stalls while the workload ran: forks for an AOF rewrite or an RDB save (``background``
    #: records); each with the unavailability window it may explain (``during``), else None
    stalls: list[dict[str, Any]] = field(default_factory=list)
    paused_master: list[Window] = field(default_factory=list)  # a second master whose writes were held

    @property
    def unavailable_longest_ms(self) -> float:
        return max((w.ms for w in self.unavailable), default=0.0)

    @staticmethod
    def summary_keys() -> list[str]:
        """The numeric summary metrics (what `lab drill --fail-on` can gate on)."""
        return [
            "duration_ms",
            "ok",
            "failed",
            "indeterminate",
            "indeterminate_survived",
            "lost",
            "errored_but_applied",
            "duplicated",
            "stale_reads",
            "old_master_reads",
            "anomalies",
            "replica_stale_reads",
            "split_brain_ms",
            "two_masters_ms",
            "unavailable_ms",
            "unavailable_total_ms",
            "nothing_kept_ms",
            "failovers",
            "epochs",
            "errors",
        ]

    def summary(self) -> dict[str, Any]:
        """The numbers a CI gate (`--fail-on`) and the report's table use."""
        return {
            "workload": self.workload,
            "duration_ms": self.duration_ms,
            "ok": sum(v["ok"] for v in self.operations.values()),
            "failed": sum(v["fail"] for v in self.operations.values()),
            "indeterminate": self.indeterminate,
            "indeterminate_survived": self.indeterminate_survived,
            "lost": self.lost,
            "errored_but_applied": self.errored_but_applied,
            "duplicated": self.duplicated,
            "stale_reads": self.stale_reads,
            "old_master_reads": self.old_master_reads,
            "anomalies": (self.consistency or {}).get("anomalies", 0),
            "replica_stale_reads": (self.consistency or {}).get("replica_reads", {}).get("stale", 0),
            "split_brain_ms": round(sum(w.ms for w in self.split_brain), 3),
            "two_masters_ms": round(sum(w.ms for w in self.two_masters), 3),
            "unavailable_ms": self.unavailable_longest_ms,
            "unavailable_total_ms": round(sum(w.ms for w in self.unavailable), 3),
            "nothing_kept_ms": max((w.ms for w in self.nothing_kept), default=0.0),
            "failovers": len(self.failovers),
            "epochs": len(self.epochs),
            "errors": sum(self.errors.values()),
        }

    def as_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["summary"] = self.summary()
        return doc


def master_timeline(records: list[Record], addresses: dict[str, str]) -> list[tuple[float, str]]:
    """(from ms, node name) of the master, from the first role samples and every announced switch."""
    first = next((r["node"] for r in records if r["type"] == "role" and r["role"] == "master"), None)
    timeline = [(0.0, first)] if first else []
    for switch in switches(records):
        timeline.append((switch["t"], addresses.get(switch["new"], switch["new"])))
    return [(t, n) for t, n in timeline if n]


def _master_at(timeline: list[tuple[float, str]], t: float) -> str | None:
    current = None
    for start, node in timeline:
        if start <= t:
            current = node
    return current


def _windows_from_gaps(times: list[float], start: float, end: float, gap: float, detail: str) -> list[Window]:
    windows = []
    previous = start
    for t in [*sorted(times), end]:
        if t - previous > gap:
            windows.append(Window(previous, t, detail))
        previous = t
    return windows


def _merge(buckets: list[float], detail: dict[float, str]) -> list[Window]:
    windows: list[Window] = []
    for b in sorted(buckets):
        if windows and b - windows[-1].end_ms <= 1e-6:
            windows[-1].end_ms = b + BUCKET_MS
        else:
            windows.append(Window(b, b + BUCKET_MS, detail[b]))
    return windows


def check(records: list[Record], addresses: dict[str, str] | None = None) -> Findings:
    """``addresses``: 'host:port' -> node name, to name the nodes of Sentinel events."""
    addresses = addresses or {}
    records = sorted([*records, *_unfinished(records)], key=lambda r: r["t"])
    ops = [r for r in records if r["type"] in COMPLETIONS]
    events = not_operations(records)
    final = next((r for r in reversed(events) if r["type"] == "final"), None)
    duration = records[-1]["t"] if records else 0.0
    functions = {r.get("f") for r in ops}
    kind = "counter" if "incr" in functions else ("list" if "rpush" in functions else "set")
    if final is not None and "registers" in final:
        kind = "register"

    operations: dict[str, Counter[str]] = defaultdict(Counter)
    errors: Counter[str] = Counter()
    for r in ops:
        operations[r["f"]][r["type"]] += 1
        if r["type"] != "ok":
            errors[r.get("error") or "unknown"] += 1

    writes = [r for r in ops if r["f"] in WRITES]
    acked = [r for r in writes if r["type"] == "ok"]
    notes = [] if final else ["no final read: lost writes cannot be counted"]
    duplicated = 0
    if kind == "counter":
        lost, lost_examples, survived, applied = _counter_outcome(writes, final)
        kept = acked
    elif kind == "list":
        lost, lost_examples, survived, applied, duplicated, kept = _list_outcome(writes, final)
    else:
        lost, lost_examples, survived, applied, kept = _set_outcome(writes, final)
    kept_ids = {id(r) for r in kept}
    # When each lost write was acknowledged (a counter's losses belong to a key, not to a write).
    lost_times = None if kind == "counter" else [r["t"] for r in acked if id(r) not in kept_ids]

    consistency = None
    if kind == "register":
        consistency = check_registers(records)
    elif kind == "list":
        consistency = check_lists(records)
    timeline = master_timeline(events, addresses)
    stale = _stale_reads(records) if kind == "set" else []  # (a register's reads: its checker's part)
    old_master = [
        r
        for r in ops
        if r["f"] == "read" and r["type"] == "ok" and r.get("node") and r["node"] != _master_at(timeline, r["t"])
    ]
    start, end = _workload_span(events, ops, duration)
    split_brain = _at_once(((r["t"], r["node"]) for r in acked if r.get("node")), "acknowledged by")
    two_masters = masters_at_once(events, start, end)
    paused_master = _minus(masters_at_once(events, start, end, paused=True), two_masters)

    ack_times = [r["t"] for r in acked]
    kept_times = [r["t"] for r in kept]
    unavailable = _windows_from_gaps(ack_times, start, end, GAP_MS, "no write acknowledged")
    stalls = _stalls(events, start, end, unavailable)
    epochs = sorted(
        {int(r["data"].split()[0]) for r in events if r["type"] == "sentinel" and r["event"] == "+new-epoch"}
    )
    return Findings(
        workload=kind,
        duration_ms=duration,
        operations={f: {k: counts[k] for k in ("ok", "fail", "info")} for f, counts in operations.items()},
        errors=dict(errors),
        lost=lost,
        lost_examples=lost_examples,
        indeterminate=sum(1 for r in writes if r["type"] == "info"),
        indeterminate_survived=survived,
        errored_but_applied=applied,
        duplicated=duplicated,
        stale_reads=len(stale) + (consistency or {}).get("master_reads", {}).get("stale", 0),
        stale_read_examples=[
            f"{r['key']} read {r.get('value')!r} from {r.get('node') or 'an unknown node'} at {r['t'] / 1000:.2f}s"
            for r in stale[:10]
        ],
        old_master_reads=len(old_master),
        paused_master=paused_master,
        consistency=consistency,
        stalls=stalls,
        split_brain=split_brain,
        two_masters=two_masters,
        unavailable=unavailable,
        nothing_kept=_windows_from_gaps(kept_times, start, end, GAP_MS, "no write kept"),
        failovers=[
            {**s, "old": addresses.get(s["old"], s["old"]), "new": addresses.get(s["new"], s["new"])}
            for s in switches(events)
        ],
        epochs=epochs,
        final_node=final["node"] if final else None,
        notes=notes + raced_promotions(events, addresses) + setbacks(events),
        steps=_steps(events, unavailable, lost_times),
        lost_acked=_lost_acked(lost_times, fault_spans(events)) if lost_times else None,
    )


def _lost_acked(times: list[float], faults: list[FaultSpan]) -> Window:
    """When the lost writes were acknowledged, said from the moment the first fault took effect."""
    first, last = min(times), max(times)
    if not faults:
        return Window(first, last, "lost writes acknowledged")
    fault = faults[0]

    def side(t: float) -> str:
        offset = (t - fault.applied_ms) / 1000
        return f"{abs(offset):.2f} s {'before' if offset < 0 else 'after'}"

    took = f"the {fault.fault} of {fault.node} took effect"
    return Window(first, last, f"lost writes acknowledged from {side(first)} to {side(last)} {took}")


def _steps(records: list[Record], unavailable: list[Window], lost_times: list[float] | None) -> list[dict[str, Any]]:
    """Each step's span, the longest unavailability overlapping it, and the writes acknowledged during
    it that were lost (None for a counter workload: its losses cannot be placed in time)."""
    started: dict[str, float] = {}
    steps = []
    for r in records:
        if r["type"] != "step":
            continue
        if r["event"] == "start":
            started[r["step"]] = r["t"]
            continue
        begin, end = started.pop(r["step"], r["t"]), r["t"]
        gaps = [w.ms for w in unavailable if w.start_ms < end and w.end_ms > begin]
        steps.append(
            {
                "step": r["step"],
                "start_ms": begin,
                "end_ms": end,
                "unavailable_ms": max(gaps, default=0.0),
                "lost": None if lost_times is None else sum(1 for t in lost_times if begin <= t <= end),
            }
        )
    return steps


def masters_at_once(
    records: list[Record], start: float = 0.0, end: float = float("inf"), paused: bool = False
) -> list[Window]:
    """Windows in which the role samples between ``start`` and ``end`` show more than one master. A
    sampled role holds until that node's next sample (a sampling round can outlast 100 ms: a node
    sampled in one bucket and the next is a master through the bucket between). A master whose
    writes were held (``pause`` records) counts only with ``paused=True``."""
    samples: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        if r["type"] == "role" and start <= r["t"] <= end:
            samples[r["node"]].append(r)
    held_writes = _pauses(records)
    held: list[tuple[float, str]] = []
    for node, rs in samples.items():
        rs.sort(key=lambda r: r["t"])
        for r, after in zip(rs, [*rs[1:], None], strict=True):
            if r["role"] != "master":
                continue
            bucket = (r["t"] // BUCKET_MS) * BUCKET_MS
            last = bucket if after is None else max(bucket, (after["t"] // BUCKET_MS) * BUCKET_MS - BUCKET_MS)
            # A master sampled while its writes were held is a replica by the time the hold ends (a safe
            # failover lifts it only then): its role does not hold past that.
            lifted = [b for a, b in held_writes.get(node, ()) if a <= r["t"] <= b]
            if lifted and not paused:
                last = min(last, (lifted[0] // BUCKET_MS) * BUCKET_MS)
            while bucket <= last:
                if paused or not any(a - BUCKET_MS < bucket <= b for a, b in held_writes.get(node, ())):
                    held.append((bucket, node))
                bucket += BUCKET_MS
    return _at_once(held, "masters:")


def _pauses(records: list[Record]) -> dict[str, list[tuple[float, float]]]:
    """Per node, the spans in which a safe failover held its writes (to the end, if never lifted)."""
    spans: dict[str, list[tuple[float, float]]] = defaultdict(list)
    begun: dict[str, float] = {}
    for r in sorted((r for r in records if r["type"] == "pause"), key=lambda r: r["t"]):
        if r["event"] == "start":
            begun.setdefault(r["node"], r["t"])
        elif r["node"] in begun:
            spans[r["node"]].append((begun.pop(r["node"]), r["t"]))
    for node, t in begun.items():
        spans[node].append((t, float("inf")))
    return spans


#: A ``background`` record is written within about a second of the fork it reports (lab.drill.history).
FORK_SEEN_WITHIN_MS = 1100.0


def _stalls(records: list[Record], start: float, end: float, unavailable: list[Window]) -> list[dict[str, Any]]:
    """The forks the servers reported while the workload ran, each with the unavailability window
    it falls in (the fork happened in the ``FORK_SEEN_WITHIN_MS`` before its record): a stall the
    fault did not cause. The window's detail names it too."""
    stalls = []
    for r in records:
        if r["type"] != "background" or not start <= r["t"] <= end:
            continue
        since = r["t"] - FORK_SEEN_WITHIN_MS - r["fork_ms"]
        during = next((w for w in unavailable if w.start_ms <= r["t"] and w.end_ms >= since), None)
        cause = f"{r['what']} fork on {r['node']} ({r['fork_ms']:g} ms)"
        if during is not None and cause not in during.detail:
            during.detail += f"; {cause} in the second before {r['t'] / 1000:.2f} s"
        stall = {k: r[k] for k in ("t", "node", "what", "fork_ms")}
        stalls.append({**stall, "during": None if during is None else [during.start_ms, during.end_ms]})
    return stalls


def _minus(windows: list[Window], taken: list[Window]) -> list[Window]:
    """``windows`` without those that overlap one of ``taken``."""
    return [w for w in windows if not any(o.start_ms < w.end_ms and w.start_ms < o.end_ms for o in taken)]


def _stale_reads(records: list[Record]) -> list[Record]:
    """Reads that returned other than what the acknowledged write of their key, acknowledged before
    the read was sent, wrote (a set workload writes each key once: the value read must be it)."""
    written: dict[Any, tuple[float, Any]] = {}  # key -> (acknowledged at, value)
    sent: dict[tuple[Any, Any], float] = {}  # (process, key) -> when its read was sent
    stale = []
    for r in records:
        if r.get("f") == "write" and r["type"] == "ok":
            written[r["key"]] = (r["t"], r["value"])
        elif r.get("f") != "read":
            continue
        elif r["type"] == "invoke":
            sent[(r["process"], r["key"])] = r["t"]
        elif r["type"] == "ok" and r["key"] in written:
            acked, value = written[r["key"]]
            if acked < sent.get((r["process"], r["key"]), float(r["t"])) and str(r["value"]) != str(value):
                stale.append(r)
    return stale


def _at_once(samples: Iterable[tuple[float, str]], what: str) -> list[Window]:
    """Windows where more than one node appears in the same 100 ms: (time ms, node) samples."""
    buckets: dict[float, set[str]] = defaultdict(set)
    for t, node in samples:
        buckets[(t // BUCKET_MS) * BUCKET_MS].add(node)
    doubled = [b for b, nodes in buckets.items() if len(nodes) > 1]
    return _merge(doubled, {b: f"{what} " + ", ".join(sorted(buckets[b])) for b in doubled})


def _set_outcome(writes: list[Record], final: Record | None) -> tuple[int, list[str], int, int, list[Record]]:
    """SET of unique keys: (lost, examples, indeterminate that survived, errored but applied, the
    acknowledged writes kept)."""
    absent = set(final["absent"]) if final else set()
    acked = [r for r in writes if r["type"] == "ok"]
    lost_keys = [r["key"] for r in acked if r["key"] in absent]
    survived = sum(1 for r in writes if r["type"] == "info" and final and r["key"] not in absent)
    applied = sum(1 for r in writes if r["type"] == "fail" and final and r["key"] not in absent)
    return len(lost_keys), lost_keys[:20], survived, applied, [r for r in acked if r["key"] not in absent]


def _unfinished(records: list[Record]) -> list[Record]:
    """An operation invoked and never completed (a client stuck when the drill ended) may or may not
    have happened: an ``info`` at the end of the history."""
    invoked: Counter[Any] = Counter()
    completed: Counter[Any] = Counter()
    end = 0.0
    for r in records:
        if r["type"] == "invoke":
            invoked[r.get("process")] += 1
        elif r["type"] in COMPLETIONS:
            completed[r.get("process")] += 1
        else:
            continue
        if r["t"] > end:
            end = r["t"]
    # (only a client with more invokes than completions has one to look for: most often none has)
    waiting = {process for process, n in invoked.items() if n > completed[process]}
    if not waiting:
        return []
    mine = [r for r in records if r["type"] in OPERATIONS and r.get("process") in waiting]
    done = {_operation(r) for r in mine if r["type"] != "invoke"}
    return [
        {**r, "type": "info", "t": end, "error": "no answer"}
        for r in mine
        if r["type"] == "invoke" and _operation(r) not in done
    ]


def _operation(r: Record) -> tuple[Any, ...]:
    """What pairs an invoke with its completion: a write's value is the one it sent, a read's
    completion carries the value it read (its invoke has none)."""
    value = None if r.get("f") == "read" else r.get("value")
    return r.get("process"), r.get("f"), r.get("key"), tuple(value) if isinstance(value, list) else value


def _workload_span(records: list[Record], ops: list[Record], duration: float) -> tuple[float, float]:
    """When the workload ran: the drill's start and stop records, else from 0 to the last operation
    (not the heal and final read after it). A client stuck until the end is unavailable until then."""
    marks = {r["event"]: r["t"] for r in records if r["type"] == "drill"}
    return marks.get("start", 0.0), marks.get("stop", max((r["t"] for r in ops), default=duration))


def _list_outcome(writes: list[Record], final: Record | None) -> tuple[int, list[str], int, int, int, list[Record]]:
    """RPUSH of unique values onto lists: (lost, examples, indeterminate that survived, errored but
    applied, values that landed twice, the acknowledged writes kept)."""
    if final is None:
        return 0, [], 0, 0, 0, [r for r in writes if r["type"] == "ok"]
    present = Counter((key, int(v)) for key, values in final.get("lists", {}).items() for v in values)

    def there(r: Record) -> bool:
        return present[(r["key"], int(r["value"]))] > 0

    acked = [r for r in writes if r["type"] == "ok"]
    lost = [r for r in acked if not there(r)]
    return (
        len(lost),
        [f"{r['key']}={r['value']}" for r in lost[:20]],
        sum(1 for r in writes if r["type"] == "info" and there(r)),
        sum(1 for r in writes if r["type"] == "fail" and there(r)),
        sum(count - 1 for count in present.values() if count > 1),
        [r for r in acked if there(r)],
    )


def _counter_outcome(writes: list[Record], final: Record | None) -> tuple[int, list[str], int, int]:
    """(lost, examples, indeterminate that survived, errored but applied) for INCR counters: per key,
    the final value must lie between the acknowledged increments and those plus the indeterminate ones."""
    if final is None:
        return 0, [], 0, 0
    lost = survived = applied = 0
    examples = []
    per_key: dict[str, Counter[str]] = defaultdict(Counter)
    for r in writes:
        per_key[r["key"]][r["type"]] += 1
    for key, counts in per_key.items():
        value = int(final["counters"].get(key, 0))
        if value < counts["ok"]:
            lost += counts["ok"] - value
            examples.append(f"{key}: {counts['ok']} acknowledged, {value} kept")
        beyond = value - counts["ok"]
        survived += max(0, min(beyond, counts["info"]))
        applied += max(0, beyond - counts["info"])
    return lost, examples[:20], survived, applied
