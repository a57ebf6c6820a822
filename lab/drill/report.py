"""A drill's report: ``report.json`` (summary + findings, see docs/report.schema.json),
``history.jsonl`` (every record), ``timeline.png`` (the failover as a picture) and a self-contained
``report.html`` (what happened in one sentence built from the history, the picture embedded, the tables with
labels and units, the Sentinel event log; its style inline, which matrix.html shares)."""

from __future__ import annotations

import base64
import datetime
import html
import json
import os
import platform
import shutil
from collections import defaultdict
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path
from typing import Any

from lab import interrupts
from lab.drill.checker import BUCKET_MS, FaultSpan, Findings, Window, fault_spans, masters_at_once
from lab.drill.history import Record
from lab.drill.result import DrillResult
from lab.errors import UsageError
from lab.spec import LabSpec

SCHEMA_VERSION = 1
ROLE_COLOURS = {"master": "#1f4e9c", "replica": "#9ec3e6", "down": "#c0392b"}
#: Sentinel events worth a marker on the timeline (the rest stay in the event log).
MARKED = {
    "+sdown": ("v", "#e67e22"),
    "+odown": ("v", "#c0392b"),
    "+try-failover": ("o", "#8e44ad"),
    "+elected-leader": ("*", "#8e44ad"),
    "+promoted-slave": ("^", "#27ae60"),
    "+switch-master": ("D", "#1f4e9c"),
    "+convert-to-slave": ("s", "#16a085"),
    "+tilt": ("X", "#000000"),
}


def check_destination(directory: Path, option: str = "--report") -> Path:
    """Refuse, before a drill starts (a drill kills a master: it cannot be run again for free), a report
    directory it could not write into (a file, a path under a file, a place it may not create files)
    or one that holds files already (a previous report would be overwritten file by file, the rest of
    it left mixed in). Creates nothing: what it creates to try is removed again. The absolute path."""
    directory = directory.absolute()
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{option} {directory} is a file, not a directory")
    if directory.is_dir() and any(directory.iterdir()):
        raise UsageError(f"{option} {directory} is not empty (a previous report?): name a new or empty directory")
    existing = directory
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{option} {directory}: {existing} is a file, not a directory")
    created = [p for p in (directory, *directory.parents) if not p.exists()]
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".lab-write-probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"{option} {directory}: cannot write there ({exc.strerror})") from None
    finally:
        for path in created:  # (innermost first)
            with suppress(OSError):
                path.rmdir()
    return directory


def remove_if_unfinished(directory: Path) -> str:
    """Register with the command under way (lab.interrupts) that an interrupt removes the report directory
    ``directory`` (as check_destination left it: absent, or empty), so a rerun with the same --report is
    not refused as non-empty; the key to pass to interrupts.done once the report is complete."""
    created = [p for p in (directory, *directory.parents) if not p.exists()]

    def undo() -> str | None:
        if not directory.is_dir() or (directory not in created and not any(directory.iterdir())):
            return None
        if directory not in created:  # it was there, empty: it is left empty
            for path in directory.iterdir():
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
            return f"emptied the unfinished report {directory} again"
        shutil.rmtree(directory)
        for path in created[1:]:  # the parents it created (innermost first), if nothing else is in them
            with suppress(OSError):
                path.rmdir()
        return f"removed the unfinished report {directory}"

    key = f"report {directory}"
    interrupts.undo_on_interrupt(key, undo)
    return key


def write_report(result: DrillResult, spec: LabSpec, directory: Path) -> dict[str, Path]:
    """Write the four files into ``directory`` (created); returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    records = result.recorder.history.records
    paths = {
        "json": directory / "report.json",
        "history": directory / "history.jsonl",
        "timeline": directory / "timeline.png",
        "html": directory / "report.html",
    }
    result.recorder.history.write(paths["history"])
    title = f"{result.scenario} on lab {spec.name} ({spec.backend}, {result.recorder.clients} clients)"
    draw_timeline(records, result.findings, [n.name for n in spec.redis_nodes], title, paths["timeline"])
    doc = report_document(result, spec, records)
    paths["json"].write_text(json.dumps(doc, indent=2))
    paths["html"].write_text(render_html(doc, paths["timeline"].read_bytes()))
    return paths


def report_document(result: DrillResult, spec: LabSpec, records: list[Record]) -> dict[str, Any]:
    findings = result.findings
    return {
        "schema_version": SCHEMA_VERSION,
        "scenario": result.scenario,
        "story": story(records, findings),
        "lab": {
            "name": spec.name,
            "backend": spec.backend,
            "profile": spec.profile,
            "down_after_ms": spec.down_after_ms,
            # The build each node ran at the end (a rolling upgrade changes them).
            "servers": {
                node.name: f"{build.flavour} {build.release}"
                for node in spec.nodes
                if (build := spec.server(node)) is not None
            },
        },
        "clients": result.recorder.clients,
        "workload": findings.workload,
        "rate": result.recorder.workload.rate,
        "generated_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "seconds": round(result.seconds, 3),
        "summary": findings.summary(),
        "findings": findings.as_dict(),
        "faults": fault_list(records),
        "sentinel_events": [
            {k: r[k] for k in ("t", "sentinel", "event", "data")} for r in records if r["type"] == "sentinel"
        ],
        "files": {"history": "history.jsonl", "timeline": "timeline.png", "html": "report.html"},
    }


def fault_list(records: list[Record]) -> list[dict[str, Any]]:
    """report.json's faults: each injection stamped when it started, with ``applied`` (when it had taken
    effect), and each revert."""
    faults: list[dict[str, Any]] = []
    for span in fault_spans(records):
        faults.append({"t": span.start_ms, "action": "inject", "fault": span.fault, "node": span.node})
        faults[-1]["applied"] = span.applied_ms
        if span.end_ms is not None:
            faults.append({"t": span.end_ms, "action": "revert", "fault": span.fault, "node": span.node})
    return sorted(faults, key=lambda f: f["t"])


def machine() -> dict[str, Any]:
    """What a figure was measured on: it goes beside every figure the project publishes."""
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_1min": round(os.getloadavg()[0], 2),
    }


def machine_line(m: dict[str, Any]) -> str:
    return f"{m['cpus']} CPUs, {m['memory_gib']} GiB, {m['kernel']}, Python {m['python']}, load {m['load_1min']}"


# -- the story, in one sentence ---------------------------------------------------------------------
#: What each fault did, and what undoing it during the workload did, in words.
DONE = {
    "kill": ("was killed (SIGKILL)", "was started again"),
    "stop": ("was stopped (SIGTERM)", "was started again"),
    "freeze": ("was frozen (SIGSTOP)", "was thawed"),
    "isolate": ("was cut off from every other node", "was reconnected"),
    "upgrade": ("was upgraded", "was upgraded"),
}
#: Faults after which the Sentinels must replace the master they hit.
REPLACES_MASTER = ("kill", "stop", "freeze", "isolate")


def _s(ms: float) -> str:
    return f"{ms / 1000:.2f} s"


def _names(names: list[str]) -> str:
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


def _fault_clauses(spans: list[FaultSpan], stop: float) -> list[str]:
    """The faults in words: faults of one kind started together (restart-all) as one clause, a drill's
    steps (rolling-upgrade) counted, an undo during the workload (a thaw, a reconnection) said."""
    steps = [s for s in spans if s.fault in ("upgrade", "failover")]
    if any(s.fault == "upgrade" for s in steps):
        upgraded = sorted({s.node for s in steps if s.fault == "upgrade"})
        safe = sum(1 for s in steps if s.fault == "failover")
        end = max((s.end_ms or s.start_ms) for s in steps)
        return [
            f"{len(upgraded)} nodes were upgraded one by one from {_s(steps[0].start_ms)} to {_s(end)}"
            + (f" with {safe} safe failover{'s' * (safe > 1)} on the way" if safe else "")
        ]
    clauses = []
    for group in fault_groups(spans):
        first, who = group[0], _names([s.node for s in group])
        if first.fault in ("failover", "failover-unsafe"):
            kind = "a safe failover" if first.fault == "failover" else "an unsafe failover (bare SENTINEL FAILOVER)"
            clause = f"{kind} away from {who} began at {_s(first.start_ms)}"
            if first.end_ms is not None:
                clause += f" and returned at {_s(first.end_ms)}"
            clauses.append(clause)
            continue
        done, undone = DONE.get(first.fault, (f"had the fault {first.fault}", "was restored"))
        if len(group) > 1:
            done, undone = (f"were {text.split(' ', 1)[1]}" for text in (done, undone))
        clause = f"{who} {done} at {_s(first.start_ms)}"
        applied = max(s.applied_ms for s in group)
        if applied - first.start_ms >= 200:
            clause += f" (in effect at {_s(applied)})"
        clauses.append(clause)
        ends = [s.end_ms for s in group if s.end_ms is not None and s.end_ms <= stop]
        if len(ends) == len(group):
            clauses.append(f"{'they' if len(group) > 1 else first.node} {undone} at {_s(max(ends))}")
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
    return _names(window.detail.split(":", 1)[-1].replace("acknowledged by", "").strip().split(", "))


def story(records: list[Record], findings: Findings) -> str:
    """One sentence that tells the drill from its history: the fault, the Sentinels' agreement, the
    promotion, when clients wrote again, two masters, the old master's return, and what was lost. What
    did not happen is said too."""
    records = sorted(records, key=lambda r: r["t"])
    marks = {r["event"]: r["t"] for r in records if r["type"] == "drill"}
    stop = marks.get("stop", max((r["t"] for r in records), default=0.0))
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
        clauses.append(f"the Sentinels agreed the master was down at {_s(agreed)}")
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
    clauses += _at_once_clauses(findings.two_masters, "were both masters")
    if findings.split_brain:
        total = sum(w.ms for w in findings.split_brain)
        clauses.append(f"two nodes acknowledged writes at once for {_s(total)}")
    if victim is not None and victim.node in {r["node"] for r in records if r["type"] == "role"}:
        back = _rejoined(records, victim.node, victim.applied_ms)
        if back is None:
            clauses.append(f"{victim.node} had not rejoined as a replica when the recording ended")
        else:
            when = " after the heal" if "heal" in marks and back >= marks["heal"] else ""
            clauses.append(f"{victim.node} rejoined as a replica at {_s(back)}{when}")
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
            clauses.append(f"{names} {what} for {_s(total)} from {_s(group[0].start_ms)}")
        else:
            clauses.append(
                f"{names} {what} for {_s(total)} in all between {_s(group[0].start_ms)} and {_s(group[-1].end_ms)}"
            )
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
        return f"{new} was promoted at {_s(announced)}"
    return f"{new} was promoted at {_s(became)} (the Sentinels announced it at {_s(announced)})"


def _clients_clause(findings: Findings, begin: float, stop: float) -> str:
    """The longest time without an acknowledged write after the fault, and, when it is longer, the
    time in which nothing the clients wrote was kept (they wrote to a master that was then demoted)."""
    gaps = [w for w in findings.unavailable if w.end_ms > begin]
    longest = max(gaps, key=lambda w: w.ms, default=None)
    if longest is None:
        clause = "clients never went more than 0.1 s without an acknowledged write"
    elif longest.end_ms >= stop:
        clause = f"clients had not written again when the workload stopped at {_s(stop)}"
    else:
        clause = f"clients wrote again at {_s(longest.end_ms)} ({_s(longest.ms)} without an acknowledged write)"
    kept = max(findings.nothing_kept, key=lambda w: w.ms, default=None)
    if kept is not None and kept.ms > (longest.ms if longest else 0.0) + 500:
        clause += f", but nothing they wrote from {_s(kept.start_ms)} to {_s(kept.end_ms)} was kept"
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


# -- the summary, with labels and units -------------------------------------------------------------
def summary_rows(findings: dict[str, Any]) -> list[tuple[str, str]]:
    """The summary as (label, value with its unit), from the findings as report.json holds them
    (``Findings.as_dict``): the CLI's table and report.html's."""
    s, span = findings["summary"], findings["lost_acked"]
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
        ("stale reads", f"{s['stale_reads']:,}"),
        ("two masters at once (role samples)", _s(s["two_masters_ms"])),
        ("split brain (two nodes acknowledging)", _s(s["split_brain_ms"])),
        ("longest unavailability", _s(s["unavailable_ms"])),
        ("total unavailability", _s(s["unavailable_total_ms"])),
        ("longest window with nothing kept", _s(s["nothing_kept_ms"])),
        ("failovers (epochs)", f"{s['failovers']} ({s['epochs']})"),
        ("errors (all classes)", f"{s['errors']:,}"),
        ("recorded for", _s(s["duration_ms"])),
    ]


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


# -- the picture ------------------------------------------------------------------------------------
def _role_spans(records: Iterable[Record], node: str) -> list[tuple[float, float, str]]:
    """(start s, end s, role) from the role samples of one node."""
    spans: list[tuple[float, float, str]] = []
    for r in records:
        if r["type"] != "role" or r["node"] != node:
            continue
        t = r["t"] / 1000
        if spans and spans[-1][2] == r["role"]:
            spans[-1] = (spans[-1][0], t, r["role"])
        else:
            if spans:
                spans[-1] = (spans[-1][0], t, spans[-1][2])
            spans.append((t, t, r["role"]))
    return spans


def draw_timeline(records: list[Record], findings: Findings, nodes: list[str], title: str, path: Path) -> None:
    """Save :func:`timeline_figure` as a PNG."""
    import matplotlib.pyplot as plt

    fig = timeline_figure(records, findings, nodes, title)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def timeline_figure(records: list[Record], findings: Findings, nodes: list[str], title: str) -> Any:
    """The drill as a picture: one lane per data node (its role over time, through the heal), one
    marker per failover, the Sentinels' individual events on a thin lane of their own, the clients'
    operations per 100 ms; each fault from the start of its injection (a band until it took effect,
    hatched on its node while in effect), the heal labelled; bands where no write was acknowledged and
    where two nodes were masters or acknowledged writes at once. Legends name only what is drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = sorted(records, key=lambda r: r["t"])
    sentinels = sorted({r["sentinel"] for r in records if r["type"] == "sentinel"})
    end = max((r["t"] for r in records), default=1.0) / 1000
    fig, (lanes, events, ops) = plt.subplots(
        3,
        1,
        figsize=(13, 6.2),
        sharex=True,
        gridspec_kw={"height_ratios": [len(nodes) + 1, 0.25 * max(len(sentinels), 1) + 0.6, 2]},
    )
    legend: dict[str, Any] = {}  # what is drawn, in this order: the roles first
    _draw_lanes(lanes, records, nodes, legend)
    _draw_failovers(lanes, findings, nodes, legend)
    _draw_events(events, records, sentinels)
    _draw_operations(ops, records, findings)
    _draw_faults((lanes, events, ops), records, nodes, sentinels, legend)
    _draw_bands((lanes, events, ops), records, findings, legend)
    lanes.legend(
        legend.values(), legend.keys(), loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7, frameon=False
    )
    s = findings.summary()
    failovers = f"{s['failovers']} failover{'' if s['failovers'] == 1 else 's'}"
    two = f"; two masters for {_s(s['two_masters_ms'])} while the workload ran" if s["two_masters_ms"] else ""
    lanes.set_title(
        f"{title}\n{s['lost']:,} acknowledged writes lost; {failovers}; longest unavailability "
        f"{_s(s['unavailable_ms'])}{two}; {s['errors']:,} errors",
        fontsize=10,
    )
    ops.set_xlim(0, end)
    fig.tight_layout()
    fig.subplots_adjust(hspace=0.08)
    return fig


def _patch(**style: Any) -> Any:
    from matplotlib.patches import Patch

    return Patch(**style)


def _draw_lanes(lanes: Any, records: list[Record], nodes: list[str], legend: dict[str, Any]) -> None:
    """The data nodes' roles over time, one lane each (redis-1 on top)."""
    for i, node in enumerate(nodes):
        y = len(nodes) - i
        for start, stop, role in _role_spans(records, node):
            span = [(start, max(stop - start, 0.05))]
            lanes.broken_barh(span, (y - 0.35, 0.7), color=ROLE_COLOURS.get(role, "#999"), zorder=2)
            legend.setdefault(role, _patch(facecolor=ROLE_COLOURS.get(role, "#999")))
    order = list(ROLE_COLOURS)
    for role in sorted(legend, key=lambda r: order.index(r) if r in order else len(order)):
        legend[role] = legend.pop(role)
    lanes.set_yticks(range(1, len(nodes) + 1), list(reversed(nodes)))
    lanes.set_ylim(0.4, len(nodes) + 0.9)


def _draw_failovers(lanes: Any, findings: Findings, nodes: list[str], legend: dict[str, Any]) -> None:
    """One marker per failover the Sentinels announced, on the lane of the node they promoted."""
    from matplotlib.lines import Line2D

    for number, failover in enumerate(findings.failovers, start=1):
        new = failover["new"]
        y = len(nodes) - nodes.index(new) if new in nodes else len(nodes) + 0.5
        x = failover["t"] / 1000
        lanes.scatter([x], [y], marker="D", s=90, color="#f1c40f", edgecolor="#000", zorder=5)
        lanes.annotate(
            f"failover {number}: {failover['old']} → {new}",
            (x, y),
            xytext=(7, 7),
            textcoords="offset points",
            fontsize=7,
            zorder=6,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
        )
    if findings.failovers:
        legend["failover (+switch-master)"] = Line2D(
            [], [], marker="D", ls="", color="#f1c40f", markeredgecolor="#000", markersize=7
        )


def _draw_events(events: Any, records: list[Record], sentinels: list[str]) -> None:
    """Every Sentinel's own events, one thin row per Sentinel."""
    seen: set[str] = set()
    rows = {name: len(sentinels) - i for i, name in enumerate(sentinels)}
    for r in records:
        if r["type"] == "sentinel" and r["event"] in MARKED:
            marker, colour = MARKED[r["event"]]
            label = r["event"] if r["event"] not in seen else None
            seen.add(r["event"])
            events.scatter(
                [r["t"] / 1000], [rows[r["sentinel"]]], marker=marker, color=colour, s=16, zorder=3, label=label
            )
    events.set_yticks(list(rows.values()), list(rows), fontsize=7)
    events.set_ylim(0.4, len(sentinels) + 0.6)
    events.set_ylabel("Sentinel\nevents", fontsize=7)
    if seen:
        events.legend(loc="upper left", bbox_to_anchor=(1.005, 1.25), fontsize=6, frameon=False, ncol=2)


def _draw_operations(ops: Any, records: list[Record], findings: Findings) -> None:
    """Client operations per 100 ms, stacked: acknowledged, failed, unknown outcome (only those that
    happened are drawn and named); above them, when the writes later lost were acknowledged."""
    buckets: dict[str, dict[float, int]] = {"ok": defaultdict(int), "fail": defaultdict(int), "info": defaultdict(int)}
    for r in records:
        if r["type"] in buckets:
            buckets[r["type"]][(r["t"] // BUCKET_MS) * BUCKET_MS / 1000] += 1
    bottom: dict[float, int] = defaultdict(int)
    for kind, colour, label in (("ok", "#27ae60", "ok"), ("fail", "#c0392b", "error"), ("info", "#e67e22", "unknown")):
        xs = sorted(buckets[kind])
        if not xs:
            continue
        heights = [buckets[kind][x] for x in xs]
        ops.bar(xs, heights, BUCKET_MS / 1000, bottom=[bottom[x] for x in xs], color=colour, label=label, align="edge")
        for x in xs:
            bottom[x] += buckets[kind][x]
    span = findings.lost_acked
    if span is not None:
        top = max(bottom.values(), default=1) * 1.08
        ops.hlines(top, span.start_ms / 1000, max(span.end_ms, span.start_ms + 50) / 1000, color="#c0392b", lw=4,
                   label=f"lost writes acknowledged ({findings.lost:,})")  # fmt: skip
    ops.set_ylabel("ops / 100 ms")
    ops.set_xlabel("seconds since the drill started")
    if ops.get_legend_handles_labels()[0]:
        ops.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7, frameon=False)


def _draw_faults(
    axes: tuple[Any, ...], records: list[Record], nodes: list[str], sentinels: list[str], legend: dict[str, Any]
) -> None:
    """Each fault from the start of its injection: a band until it took effect, a dashed line then,
    its node hatched while it is in effect, a dotted line where it was undone during the workload; the
    heal after the workload, labelled."""
    lanes, events, _ = axes
    spans = fault_spans(records)
    marks = {r["event"]: r["t"] for r in records if r["type"] == "drill"}
    heal = marks.get("heal")
    top = len(nodes) + 0.55
    _label_faults(lanes, axes, spans, heal, top)
    for span in spans:
        start, applied = span.start_ms / 1000, span.applied_ms / 1000
        for axis in axes:
            if applied - start >= 0.1:
                axis.axvspan(start, applied, color="#7f8c8d", alpha=0.3, lw=0, zorder=1)
            axis.axvline(applied, color="#555", ls="--", lw=1, zorder=1)
        if applied - start >= 0.1:
            legend.setdefault("fault being applied", _patch(facecolor="#7f8c8d", alpha=0.3))
        until = span.end_ms / 1000 if span.end_ms is not None else (heal or span.applied_ms) / 1000
        if span.fault in REPLACES_MASTER and until > applied:
            if span.node in nodes:
                where, y, h = lanes, len(nodes) - nodes.index(span.node), 0.7
            elif span.node in sentinels:
                where, y, h = events, len(sentinels) - sentinels.index(span.node), 0.6
            else:
                where = None
            if where is not None:
                where.broken_barh([(applied, until - applied)], (y - h / 2, h), facecolor="none", edgecolor="#222",
                                  hatch="////", lw=0, zorder=3)  # fmt: skip
                legend.setdefault("fault in effect", _patch(facecolor="none", edgecolor="#222", hatch="////"))
    if heal is not None:
        for axis in axes:
            axis.axvline(heal / 1000, color="#2c3e50", ls=":", lw=1.5, zorder=1)
        lanes.annotate("heal", (heal / 1000, top), xytext=(3, 0), textcoords="offset points", fontsize=8,
                       fontweight="bold", color="#2c3e50")  # fmt: skip


#: What undoing a fault during the workload is called on the picture.
UNDONE = {"kill": "restarted", "stop": "restarted", "freeze": "thawed", "isolate": "reconnected"}


def _label_faults(lanes: Any, axes: tuple[Any, ...], spans: list[FaultSpan], heal: float | None, top: float) -> None:
    """One label per group of faults started together (``stop 6 nodes``) where it started, and a dotted
    line where it was undone during the workload; more than four groups (a rolling upgrade's steps) are
    numbered as the report's Faults table numbers them."""
    groups = fault_groups(spans)
    dense = len(groups) > 4
    number = 0
    for group in groups:
        first, last, number = number + 1, number + len(group), number + len(group)
        if dense:
            label = str(first) if first == last else f"{first}-{last}"
        else:
            label = f"{group[0].fault} {group[0].node if len(group) == 1 else f'{len(group)} nodes'}"
        lanes.annotate(label, (group[0].start_ms / 1000, top), fontsize=7, ha="left", color="#333")
        ends = [s.end_ms for s in group if s.end_ms is not None and (heal is None or s.end_ms < heal)]
        if dense or group[0].fault not in UNDONE or len(ends) < len(group):
            continue
        for axis in axes:
            axis.axvline(max(ends) / 1000, color="#555", ls=":", lw=1.2, zorder=1)
        who = group[0].node if len(group) == 1 else f"{len(group)} nodes"
        lanes.annotate(f"{UNDONE[group[0].fault]} {who}", (max(ends) / 1000, top - 0.3), fontsize=7, color="#333")


def _draw_bands(axes: tuple[Any, ...], records: list[Record], findings: Findings, legend: dict[str, Any]) -> None:
    """Across every panel: no write acknowledged; two masters (wherever the lanes show them, the heal
    included: the finding counts the workload's span only); two nodes acknowledging writes."""
    two = {"facecolor": "#f39c12", "alpha": 0.25, "hatch": "xx", "edgecolor": "#b9770e"}
    both = {"facecolor": "#8e44ad", "alpha": 0.3, "hatch": "\\\\", "edgecolor": "#6c3483"}
    bands = (
        (findings.unavailable, "no write acknowledged", {"facecolor": "#c0392b", "alpha": 0.12}),
        (masters_at_once(records), "two masters", two),
        (findings.split_brain, "two nodes acknowledging", both),
    )
    for windows, label, style in bands:
        for window in windows:
            for axis in axes:
                axis.axvspan(
                    window.start_ms / 1000, max(window.end_ms, window.start_ms + 30) / 1000, lw=0, zorder=0, **style
                )
        if windows:
            legend[label] = _patch(**style)


# -- the page ---------------------------------------------------------------------------------------
#: The pages' style (report.html, matrix.html): inline, no fonts or scripts from anywhere.
PAGE_CSS = """
:root{--ink:#1d2733;--muted:#5b6b7c;--line:#d9e0e7;--bg:#f6f8fa;--bad:#b03a2e;--bad-bg:#fdecea;--ok:#1e8449;
--warn:#9a6700;--warn-bg:#fff4d6}
*{box-sizing:border-box} body{margin:0;background:var(--bg);color:var(--ink);
font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1320px;margin:0 auto;padding:24px 32px 48px;background:#fff;min-height:100vh}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:18px;margin:32px 0 8px;padding-bottom:4px;border-bottom:1px solid var(--line)}
code{font:13px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--bg);padding:1px 4px;
border-radius:3px}
.meta{color:var(--muted);font-size:13px;margin:2px 0} .meta b{color:var(--ink);font-weight:600}
.story{font-size:17px;line-height:1.55;margin:18px 0;padding:14px 18px;border-left:4px solid #1f4e9c;background:#eef3fa}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{flex:1 1 150px;border:1px solid var(--line);border-radius:6px;padding:10px 14px;background:#fff}
.card .value{font-size:24px;font-weight:650} .card .label{color:var(--muted);font-size:12px}
.card.bad{border-color:var(--bad);background:var(--bad-bg)} .card.bad .value{color:var(--bad)}
.card.good .value{color:var(--ok)}
figure{margin:16px 0} figure img{width:100%;height:auto;border:1px solid var(--line);border-radius:4px}
figcaption{color:var(--muted);font-size:13px;margin-top:6px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
th,td{border-bottom:1px solid var(--line);padding:4px 10px;text-align:left;vertical-align:top}
thead th{background:var(--bg);font-weight:600;border-bottom:2px solid var(--line)}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
table.kv th{font-weight:500;color:var(--muted);width:22em}
td.bad{background:var(--bad-bg);color:var(--bad);font-weight:650}
table.grid td{white-space:nowrap} table.grid td,table.grid th{padding:4px 6px}
table.grid tbody tr:hover{background:var(--bg)}
.note{background:var(--warn-bg);border-left:4px solid var(--warn);padding:8px 12px;margin:8px 0}
details{margin:8px 0} summary{cursor:pointer;color:#1f4e9c}
dl.legend{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;font-size:13px}
dl.legend dt{font-weight:600} dl.legend dd{margin:0;color:var(--muted)}
"""


def page(title: str, body: str) -> str:
    """A self-contained HTML page around ``body``."""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1"><link rel="icon" href="data:,">'
        f"<title>{html.escape(title)}</title><style>{PAGE_CSS}</style></head>\n<body><main>\n{body}\n</main></body></html>\n"
    )


def table(
    head: list[str], rows: list[list[str]], numeric: set[int] | None = None, marked: str = "", kind: str = ""
) -> str:
    """An HTML table; cells are HTML already (escape them); ``numeric``: the columns aligned right. A cell
    that holds ``marked`` (an element with that class) gets the class too (the whole cell coloured);
    ``kind``: the table's class (``grid``: cells never wrap)."""
    numeric = numeric or set()

    def cells(values: list[str], tag: str) -> str:
        out = ""
        for i, value in enumerate(values):
            classes = ["num"] if i in numeric else []
            if marked and f'class="{marked}"' in value:
                classes.append(marked)
            attribute = f' class="{" ".join(classes)}"' if classes else ""
            out += f"<{tag}{attribute}>{value}</{tag}>"
        return out

    body = "".join(f"<tr>{cells(row, 'td')}</tr>" for row in rows)
    attribute = f' class="{kind}"' if kind else ""
    return f"<table{attribute}><thead><tr>{cells(head, 'th')}</tr></thead><tbody>{body}</tbody></table>"


WINDOW_KINDS = {
    "unavailable": "no write acknowledged",
    "nothing_kept": "no write kept",
    "two_masters": "two masters",
    "split_brain": "two nodes acknowledging",
}


def _card(label: str, value: str, bad: bool | None = None) -> str:
    kind = "" if bad is None else (" bad" if bad else " good")
    mark = "✗ " if bad else ""
    value = f'<div class="value">{mark}{html.escape(value)}</div>'
    return f'<div class="card{kind}">{value}<div class="label">{html.escape(label)}</div></div>'


def _fault_rows(faults: list[dict[str, Any]]) -> list[list[str]]:
    """report.json's faults as rows: each injection with when it started, took effect, was undone."""
    rows: list[list[str]] = []
    open_rows: dict[tuple[str, str], list[list[str]]] = defaultdict(list)
    for f in faults:
        key = (f["fault"], f["node"])
        if f["action"] == "inject":
            applied = f.get("applied", f["t"])
            row = [str(len(rows) + 1), html.escape(f["fault"]), html.escape(f["node"]), f"{f['t'] / 1000:.3f}",
                   f"{applied / 1000:.3f}", f"{(applied - f['t']) / 1000:.3f}", "-"]  # fmt: skip
            rows.append(row)
            open_rows[key].append(row)
        elif open_rows[key]:
            open_rows[key].pop(0)[6] = f"{f['t'] / 1000:.3f}"
    return rows


def render_html(doc: dict[str, Any], png: bytes) -> str:
    """A self-contained page: what happened in one sentence, the key figures, the picture, the summary
    with labels and units, the errors by class, the windows, the faults, the Sentinels' events."""
    findings, s, lab = doc["findings"], doc["summary"], doc["lab"]
    lost_what = "acknowledged increments lost" if s["workload"] == "counter" else "acknowledged writes lost"
    cards = "".join(
        (
            _card(lost_what, f"{s['lost']:,}", s["lost"] > 0),
            _card("longest unavailability", _s(s["unavailable_ms"])),
            _card("failovers", str(s["failovers"]), s["failovers"] != 1 or None),
            _card("two masters at once", _s(s["two_masters_ms"]), s["two_masters_ms"] > 0 or None),
            _card("operations acknowledged", f"{s['ok']:,}"),
            _card("errors", f"{s['errors']:,}"),
        )
    )
    summary = "".join(
        f"<tr><th>{html.escape(label)}</th><td class=num>{html.escape(value)}</td></tr>"
        for label, value in summary_rows(findings)
    )
    errors = sorted(findings["errors"].items(), key=lambda kv: -kv[1])
    error_table = (
        table(
            ["error class", "operations", "what it means"],
            [[f"<code>{html.escape(k)}</code>", f"{v:,}", html.escape(error_meaning(k))] for k, v in errors],
            {1},
        )
        if errors
        else "<p>No operation failed.</p>"
    )
    windows = [
        [
            WINDOW_KINDS[name],
            f"{w['start_ms'] / 1000:.3f}",
            f"{w['end_ms'] / 1000:.3f}",
            f"{(w['end_ms'] - w['start_ms']) / 1000:.3f}",
            html.escape(w["detail"]),
        ]
        for name in WINDOW_KINDS
        for w in findings[name]
    ]
    lost = ", ".join(f"<code>{html.escape(k)}</code>" for k in findings["lost_examples"]) or "none"
    if findings["lost_acked"]:
        lost += f" ({html.escape(findings['lost_acked']['detail'])})"
    steps = [
        [
            html.escape(st["step"]),
            f"{st['start_ms'] / 1000:.3f}",
            f"{st['end_ms'] / 1000:.3f}",
            f"{st['unavailable_ms'] / 1000:.3f}",
            "n/a" if st["lost"] is None else f"{st['lost']:,}",
        ]
        for st in findings["steps"]
    ]
    events = [
        [
            f"{e['t'] / 1000:.3f}",
            html.escape(e["sentinel"]),
            f"<code>{html.escape(e['event'])}</code>",
            html.escape(e["data"]),
        ]
        for e in doc["sentinel_events"]
    ]
    steps_head = ["step", "from (s)", "to (s)", "longest unavailability (s)", "acknowledged writes lost"]
    steps_table = f"<h2>Steps</h2>{table(steps_head, steps, {1, 2, 3, 4})}" if steps else ""
    windows_table = (
        table(["kind", "from (s)", "to (s)", "length (s)", "detail"], windows, {1, 2, 3}) if windows else "<p>None.</p>"
    )
    faults_head = ["#", "fault", "node", "injection started (s)", "in effect (s)", "took (s)", "undone (s)"]
    faults_table = table(faults_head, _fault_rows(doc["faults"]), {0, 3, 4, 5, 6})
    events_table = table(["t (s)", "Sentinel", "event", "data"], events, {0})
    servers = ", ".join(f"{html.escape(n)}: {html.escape(b)}" for n, b in lab["servers"].items())
    rate = f"at {doc['rate']:g} operations/s" if doc["rate"] else "as fast as they go"
    body = f"""<header><h1>Drill <code>{html.escape(doc["scenario"])}</code></h1>
<p class="meta">Lab <b>{html.escape(lab["name"])}</b> · {html.escape(lab["backend"])} backend · profile
{html.escape(lab["profile"])} · down-after {lab["down_after_ms"]:,} ms · {doc["clients"]} clients ·
{html.escape(doc["workload"])} workload {rate} · the drill took {doc["seconds"]:.1f} s</p>
<p class="meta">Servers: {servers or "not recorded"}</p>
<p class="meta">Generated {html.escape(doc["generated_at"])} on {html.escape(machine_line(doc["machine"]))}</p></header>
<p class="story" id="story">{html.escape(doc["story"])}</p>
<div class="cards">{cards}</div>
<figure><img alt="timeline of the drill" src="data:image/png;base64,{base64.b64encode(png).decode()}">
<figcaption>Lanes: each data node's role, sampled every 100 ms, through the heal; diamonds: failovers; below,
each Sentinel's own events and the clients' operations per 100 ms. Grey band: a fault being applied (from the
start of its injection until it took effect); hatched: the fault in effect on its node; red: no write
acknowledged; orange cross-hatch: two masters wherever the samples show them (the summary counts those while
the workload ran: an old master the heal restarts can be one for a moment before it rejoins); purple: two nodes
acknowledging writes. Times are seconds since the drill started.</figcaption></figure>
{"".join(f'<p class="note"><b>Note:</b> {html.escape(n)}</p>' for n in findings["notes"])}
<h2>Summary</h2><table class="kv">{summary}</table>
<h2>Errors by class</h2>{error_table}
<h2>Lost writes</h2><p>First 20: {lost}</p>
{steps_table}
<h2>Windows</h2>{windows_table}
<h2>Faults</h2>{faults_table}
<details><summary>Sentinel events ({len(events)})</summary>{events_table}</details>"""
    return page(f"drill {doc['scenario']} on lab {lab['name']}", body)
