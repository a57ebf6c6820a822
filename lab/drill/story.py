"""What happened in a drill, in words: the opening sentence of report.html (built from the history: the
fault, the Sentinels' agreement, the promotion, the clients' first write, the rejoin, the loss), the summary's
labels and units (report.html and `lab drill`'s table), and what each error class means."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from lab.drill.checker import FaultSpan, Findings, Window, fault_spans
from lab.drill.history import Record, not_operations

#: What each fault did, and what undoing it during the workload did, in words.
DONE = {
    "kill": ("was killed (SIGKILL)", "was started again"),
    "stop": ("was stopped (SIGTERM)", "was started again"),
    "freeze": ("was frozen (SIGSTOP)", "was thawed"),
    "isolate": ("was cut off from every other node", "was reconnected"),
    "degrade": ("had its links degraded (lossy, slow or narrow)", "had its links restored"),
    "clock": ("had its wall clock moved (a Sentinel in TILT watches and does nothing)", "had its clock set right"),
    "flap": ("was cut off from every other node and back in turns (a flapping link)", "stopped flapping"),
    "upgrade": ("was upgraded", "was upgraded"),
}
#: The variants of a fault that DONE words wrongly: a one-way isolation cuts one direction only.
DONE_HOW = {
    ("isolate", "out"): (
        "heard every other node while what it sent them was lost (a one-way partition)",
        "was reconnected",
    ),
    ("isolate", "in"): (
        "reached every other node while what they sent it was lost (a one-way partition)",
        "was reconnected",
    ),
}


#: Faults after which the Sentinels must replace the master they hit.
REPLACES_MASTER = ("kill", "stop", "freeze", "isolate")


def in_s(ms: float) -> str:
    return f"{ms / 1000:.2f} s"


def names_text(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _master_before(records: list[Record], t: float) -> str | None:
    """The node the role samples last showed as master before ``t``."""
    master = None
    for r in records:
        if r["t"] >= t:
            break
        if r["type"] == "role" and r["role"] == "master":
            master = r["node"]
    return master


def fault_groups(spans: list[FaultSpan]) -> list[list[FaultSpan]]:
    """Faults of one kind started together (restart-all stops every node at once) as one group."""
    groups: list[list[FaultSpan]] = []
    for span in spans:
        if groups and groups[-1][0].fault == span.fault and span.start_ms - groups[-1][0].start_ms < 50:
            groups[-1].append(span)
        else:
            groups.append([span])
    return groups


#: A manual failover's fault name in a drill, in words.
FAILOVER_KINDS = {
    "failover": "a safe failover",
    "failover-unsafe": "an unsafe failover (bare SENTINEL FAILOVER)",
    "failover-coordinated": "a coordinated failover (SENTINEL FAILOVER ... COORDINATED)",
}


def _fault_clauses(spans: list[FaultSpan], stop: float) -> list[str]:
    """The faults in words: faults of one kind started together (restart-all) as one clause, a drill's
    steps (rolling-upgrade) counted, an undo during the workload (a thaw, a reconnection) said."""
    steps = [s for s in spans if s.fault in ("upgrade", "failover")]
    if any(s.fault == "upgrade" for s in steps):
        upgraded = sorted({s.node for s in steps if s.fault == "upgrade"})
        safe = sum(1 for s in steps if s.fault == "failover")
        end = max((s.end_ms or s.start_ms) for s in steps)
        return [
            f"{len(upgraded)} nodes were upgraded one by one from {in_s(steps[0].start_ms)} to {in_s(end)}"
            + (f" with {safe} safe failover{'s' * (safe > 1)} on the way" if safe else "")
        ]
    clauses = []
    for group in fault_groups(spans):
        first, who = group[0], names_text([s.node for s in group])
        if first.fault in FAILOVER_KINDS:
            kind = FAILOVER_KINDS[first.fault]
            clause = f"{kind} away from {who} began at {in_s(first.start_ms)}"
            if first.end_ms is not None:
                clause += f" and returned at {in_s(first.end_ms)}"
            clauses.append(clause)
            continue
        done, undone = DONE_HOW.get((first.fault, first.how)) or DONE.get(
            first.fault, (f"had the fault {first.fault}", "was restored")
        )
        if len(group) > 1:
            done, undone = (f"were {text.split(' ', 1)[1]}" for text in (done, undone))
        clause = f"{who} {done} at {in_s(first.start_ms)}"
        applied = max(s.applied_ms for s in group)
        if applied - first.start_ms >= 200:
            clause += f" (in effect at {in_s(applied)})"
        clauses.append(clause)
        ends = [s.end_ms for s in group if s.end_ms is not None and s.end_ms <= stop]
        if len(ends) == len(group):
            clauses.append(f"{'they' if len(group) > 1 else first.node} {undone} at {in_s(max(ends))}")
    return clauses


def _first(records: list[Record], event: str, after: float) -> float | None:
    return next((r["t"] for r in records if r["type"] == "sentinel" and r["event"] == event and r["t"] >= after), None)


def _rejoined(records: list[Record], node: str, after: float) -> float | None:
    """When ``node`` was first sampled as a replica after ``after``."""
    return next(
        (
            r["t"]
            for r in records
            if r["type"] == "role" and r["node"] == node and r["t"] > after and r["role"] == "replica"
        ),
        None,
    )


def _window_names(window: Window) -> str:
    """The nodes of a two-masters or split-brain window (its detail names them after the colon)."""
    return names_text(window.detail.split(":", 1)[-1].replace("acknowledged by", "").strip().split(", "))


def story(records: list[Record], findings: Findings) -> str:
    """One sentence that tells the drill from its history: the fault, the Sentinels' agreement, the
    promotion, when clients wrote again, two masters, the old master's return, and what was lost. What
    did not happen is said too."""
    last = max((r["t"] for r in records), default=0.0)
    records = sorted(not_operations(records), key=lambda r: r["t"])  # (it tells what the servers did)
    marks = {r["event"]: r["t"] for r in records if r["type"] == "drill"}
    stop = marks.get("stop", last)
    spans = fault_spans(records)
    if not spans:
        clauses = ["no fault was injected"]
        begin = marks.get("start", 0.0)
        victim = None
    else:
        clauses = _fault_clauses(spans, stop)
        begin = spans[0].start_ms
        master = _master_before(records, begin)
        victim = next((s for s in spans if s.node == master and s.fault in REPLACES_MASTER), None)
    agreed = _first(records, "+odown", begin)
    if agreed is not None:
        clauses.append(f"the Sentinels agreed the master was down at {in_s(agreed)}")
    elif victim is not None:
        clauses.append("the Sentinels never agreed the master was down")
    if findings.failovers:
        afters = [begin, *(f["t"] for f in findings.failovers)]
        clauses.append(
            ", then ".join(_promoted(records, f, a) for f, a in zip(findings.failovers, afters, strict=False))
        )
    else:
        clauses.append("no replica was promoted" if victim is not None else "no failover happened")
    clauses.append(_clients_clause(findings, begin, stop))
    clauses += _at_once_clauses(findings.two_masters, "were both masters while the workload ran")
    if findings.split_brain:
        total = sum(w.ms for w in findings.split_brain)
        clauses.append(f"two nodes acknowledged writes at once for {in_s(total)}")
    if victim is not None and victim.node in {r["node"] for r in records if r["type"] == "role"}:
        back = _rejoined(records, victim.node, victim.applied_ms)
        if back is None:
            clauses.append(f"{victim.node} had not rejoined as a replica when the recording ended")
        else:
            when = " after the heal" if "heal" in marks and back >= marks["heal"] else ""
            clauses.append(f"{victim.node} rejoined as a replica at {in_s(back)}{when}")
    clauses.append(_loss_clause(findings))
    return "; ".join(clauses) + "."


def _at_once_clauses(windows: list[Window], what: str) -> list[str]:
    """Two-masters windows in words, one clause per pair of nodes (role samples leave gaps: the windows
    of one pair are summed)."""
    pairs: dict[str, list[Window]] = defaultdict(list)
    for window in windows:
        pairs[_window_names(window)].append(window)
    clauses = []
    for names, group in pairs.items():
        total = sum(w.ms for w in group)
        if len(group) == 1:
            clauses.append(f"{names} {what} for {in_s(total)} from {in_s(group[0].start_ms)}")
        else:
            first, last = in_s(group[0].start_ms), in_s(group[-1].end_ms)
            clauses.append(f"{names} {what} for {in_s(total)} in all between {first} and {last}")
    return clauses


def _promoted(records: list[Record], failover: dict[str, Any], after: float) -> str:
    """When the node the Sentinels switched to was first sampled as master (their announcement comes
    after it has taken the role)."""
    new, announced = failover["new"], failover["t"]
    became = next(
        (
            r["t"]
            for r in records
            if r["type"] == "role" and r["node"] == new and r["role"] == "master" and after <= r["t"] <= announced
        ),
        None,
    )
    if became is None:
        return f"{new} was promoted at {in_s(announced)}"
    return f"{new} was promoted at {in_s(became)} (the Sentinels announced it at {in_s(announced)})"


def _clients_clause(findings: Findings, begin: float, stop: float) -> str:
    """The longest time without an acknowledged write after the fault, and, when it is longer, the
    time in which nothing the clients wrote was kept (they wrote to a master that was then demoted)."""
    gaps = [w for w in findings.unavailable if w.end_ms > begin]
    longest = max(gaps, key=lambda w: w.ms, default=None)
    if longest is None:
        clause = "clients never went more than 0.1 s without an acknowledged write"
    elif longest.end_ms >= stop:
        clause = f"clients had not written again when the workload stopped at {in_s(stop)}"
    else:
        clause = f"clients wrote again at {in_s(longest.end_ms)} ({in_s(longest.ms)} without an acknowledged write)"
    kept = max(findings.nothing_kept, key=lambda w: w.ms, default=None)
    if kept is not None and kept.ms > (longest.ms if longest else 0.0) + 500:
        clause += f", but nothing they wrote from {in_s(kept.start_ms)} to {in_s(kept.end_ms)} was kept"
    return clause


def _loss_clause(findings: Findings) -> str:
    if "no final read: lost writes cannot be counted" in findings.notes:
        return "lost writes could not be counted (no final read)"
    what = "acknowledged increments" if findings.workload == "counter" else "acknowledged writes"
    clause = f"{findings.lost:,} {what} lost"
    if findings.duplicated:
        clause += f", {findings.duplicated:,} written twice"
    if findings.errored_but_applied:
        clause += f", {findings.errored_but_applied:,} applied although the client was told they failed"
    return clause


def summary_rows(findings: dict[str, Any]) -> list[tuple[str, str]]:
    """The summary as (label, value with its unit), from the findings as report.json holds them
    (``Findings.as_dict``): the CLI's table and report.html's."""
    s, span = findings["summary"], findings["lost_acked"]
    paused = findings.get("paused_master", [])  # (report.json of an older run has none)
    lost_what = "acknowledged increments lost" if s["workload"] == "counter" else "acknowledged writes lost"
    return [
        ("operations acknowledged", f"{s['ok']:,}"),
        ("operations failed (did not happen)", f"{s['failed']:,}"),
        ("indeterminate writes (survived)", f"{s['indeterminate']:,} ({s['indeterminate_survived']:,})"),
        (lost_what, f"{s['lost']:,}"),
        (
            "lost writes acknowledged",
            "-" if span is None else f"{span['start_ms'] / 1000:.3f}-{span['end_ms'] / 1000:.3f} s",
        ),
        ("failed writes applied anyway", f"{s['errored_but_applied']:,}"),
        ("writes that landed twice", f"{s['duplicated']:,}"),
        ("stale reads (missed an acknowledged write)", f"{s['stale_reads']:,}"),
        ("right values read from a demoted master", f"{s.get('old_master_reads', 0):,}"),
        ("two masters at once (role samples)", in_s(s["two_masters_ms"])),
        ("a write-paused master still said master", in_s(sum(w["end_ms"] - w["start_ms"] for w in paused))),
        ("split brain (two nodes acknowledging)", in_s(s["split_brain_ms"])),
        ("longest unavailability", in_s(s["unavailable_ms"])),
        ("total unavailability", in_s(s["unavailable_total_ms"])),
        ("longest window with nothing kept", in_s(s["nothing_kept_ms"])),
        *_consistency_rows(findings.get("consistency")),
        *_stall_rows(findings.get("stalls", [])),
        ("failovers (epochs)", f"{s['failovers']} ({s['epochs']})"),
        ("errors (all classes)", f"{s['errors']:,}"),
        ("recorded for", in_s(s["duration_ms"])),
    ]


def _stall_rows(stalls: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The servers' own forks while the workload ran (report.json's ``stalls``)."""
    if not stalls:
        return [("server forks while the workload ran", "0")]
    kinds = ", ".join(sorted({s["what"] for s in stalls}))
    during = sum(1 for s in stalls if s["during"])
    longest = max(s["fork_ms"] for s in stalls)
    return [
        (
            "server forks while the workload ran",
            f"{len(stalls)} ({kinds}; longest {longest:g} ms; {during} in a window without writes)",
        )
    ]


def _consistency_rows(verdict: dict[str, Any] | None) -> list[tuple[str, str]]:
    if not verdict:
        return []
    rows = [(f"anomalies ({verdict['checker']} checker)", f"{verdict['anomalies']:,}")]
    if verdict["checker"] == "list-append":
        rows.append(("replica reads behind (stale)", f"{verdict['replica_reads']['stale']:,}"))
    return rows


#: What each error class a history names means (lab.drill.outcomes and the adapters), and whether the
#: operation may have happened all the same.
ERROR_MEANINGS = {
    "READONLY": "the node is a replica now (the client wrote to a demoted master)",
    "NOREPLICAS": "the master refused the write: too few replicas in reach (min-replicas-to-write)",
    "MASTERDOWN": "the replica lost its master and refuses to serve",
    "refused": "connection refused: nothing listening (the node is down)",
    "timeout": "no answer in time: the write may have happened",
    "closed": "the connection was lost after sending: the write may have happened",
    "no master": "the Sentinels named no master (a failover in progress)",
    "no answer": "never completed before the drill ended: may have happened",
}


def error_meaning(name: str) -> str:
    if name in ERROR_MEANINGS:
        return ERROR_MEANINGS[name]
    if name.startswith("other:"):
        return f"an error of class {name.split(':', 1)[1]} (no class of its own)"
    return "a reply of the server's (its first word)"
