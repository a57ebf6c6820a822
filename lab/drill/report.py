"""A drill's report: ``report.json`` (summary + findings, see docs/report.schema.json),
``history.jsonl`` (every record), ``timeline.png`` (the failover as a picture) and a self-contained
``report.html`` (the picture embedded, the tables, the Sentinel event log)."""

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
from lab.drill.checker import BUCKET_MS, Findings
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
        "faults": [{k: r[k] for k in ("t", "action", "fault", "node")} for r in records if r["type"] == "fault"],
        "sentinel_events": [
            {k: r[k] for k in ("t", "sentinel", "event", "data")} for r in records if r["type"] == "sentinel"
        ],
        "files": {"history": "history.jsonl", "timeline": "timeline.png", "html": "report.html"},
    }


def machine() -> dict[str, Any]:
    """What a figure was measured on: it goes beside every figure the project publishes."""
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_1min": round(os.getloadavg()[0], 2),
    }


def _machine_line(m: dict[str, Any]) -> str:
    return f"{m['cpus']} CPUs, {m['memory_gib']} GiB, {m['kernel']}, Python {m['python']}, load {m['load_1min']}"


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
    """One lane per data node (its role over time), the Sentinels' events as markers, client
    successes and errors per 100 ms, unavailability shaded, faults as lines, the loss counted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    end = max((r["t"] for r in records), default=1.0) / 1000
    fig, (lanes, ops) = plt.subplots(
        2, 1, figsize=(13, 5.5), sharex=True, gridspec_kw={"height_ratios": [len(nodes) + 1, 2]}
    )
    _draw_lanes(lanes, records, nodes)
    _draw_operations(ops, records)
    for axis in (lanes, ops):  # across both panels: unavailability and faults
        for window in findings.unavailable:
            axis.axvspan(window.start_ms / 1000, window.end_ms / 1000, color="#c0392b", alpha=0.12, lw=0, zorder=0)
        for r in records:
            if r["type"] == "fault":
                style = "--" if r["action"] == "inject" else ":"
                axis.axvline(r["t"] / 1000, color="#555", ls=style, lw=1)
    injected = [r for r in records if r["type"] == "fault" and r["action"] == "inject"]
    dense = len(injected) > 4  # a rolling upgrade: numbered, the report's Faults table names them
    for number, r in enumerate(injected, start=1):
        label = str(number) if dense else f"{r['fault']} {r['node']}"
        lanes.annotate(label, (r["t"] / 1000, len(nodes) + 0.45), fontsize=7, ha="left", color="#333")
    s = findings.summary()
    lanes.set_title(
        f"{title}\nlost {s['lost']} acknowledged writes; {s['failovers']} failover(s); longest unavailability "
        f"{s['unavailable_ms'] / 1000:.2f} s; {s['errors']} errors",
        fontsize=10,
    )
    ops.set_xlim(0, end)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _draw_lanes(lanes: Any, records: list[Record], nodes: list[str]) -> None:
    """The data nodes' roles over time, then the Sentinels' events on a lane of their own."""
    for i, node in enumerate(nodes):
        y = len(nodes) - i
        for start, stop, role in _role_spans(records, node):
            span = [(start, max(stop - start, 0.05))]
            lanes.broken_barh(span, (y - 0.35, 0.7), color=ROLE_COLOURS.get(role, "#999"), zorder=2)
    seen: set[str] = set()
    for r in records:
        if r["type"] == "sentinel" and r["event"] in MARKED:
            marker, colour = MARKED[r["event"]]
            label = r["event"] if r["event"] not in seen else None
            seen.add(r["event"])
            lanes.scatter([r["t"] / 1000], [0], marker=marker, color=colour, s=45, zorder=3, label=label)
    lanes.set_yticks(range(len(nodes) + 1), ["Sentinels", *reversed(nodes)])
    lanes.set_ylim(-0.6, len(nodes) + 0.6)
    for role, colour in ROLE_COLOURS.items():
        lanes.barh([-10], [0], color=colour, label=role)
    lanes.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7, frameon=False)  # beside, never over


def _draw_operations(ops: Any, records: list[Record]) -> None:
    """Client operations per 100 ms, stacked: acknowledged, failed, unknown outcome."""
    buckets: dict[str, dict[float, int]] = {"ok": defaultdict(int), "fail": defaultdict(int), "info": defaultdict(int)}
    for r in records:
        if r["type"] in buckets:
            buckets[r["type"]][(r["t"] // BUCKET_MS) * BUCKET_MS / 1000] += 1
    bottom: dict[float, int] = defaultdict(int)
    for kind, colour, label in (("ok", "#27ae60", "ok"), ("fail", "#c0392b", "error"), ("info", "#e67e22", "unknown")):
        xs = sorted(buckets[kind])
        heights = [buckets[kind][x] for x in xs]
        ops.bar(xs, heights, BUCKET_MS / 1000, bottom=[bottom[x] for x in xs], color=colour, label=label, align="edge")
        for x in xs:
            bottom[x] += buckets[kind][x]
    ops.set_ylabel("ops / 100 ms")
    ops.set_xlabel("seconds since the drill started")
    ops.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7, frameon=False)


def render_html(doc: dict[str, Any], png: bytes) -> str:
    """A self-contained page: the picture embedded, the summary, the windows, the Sentinel event log."""
    summary = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in doc["summary"].items()
    )
    findings = doc["findings"]
    windows = ""
    for name in ("unavailable", "nothing_kept", "split_brain", "two_masters"):
        for w in findings[name]:
            windows += (
                f"<tr><td>{name}</td><td>{w['start_ms'] / 1000:.3f}</td><td>{w['end_ms'] / 1000:.3f}</td>"
                f"<td>{(w['end_ms'] - w['start_ms']) / 1000:.3f}</td><td>{html.escape(w['detail'])}</td></tr>"
            )
    events = "".join(
        f"<tr><td>{e['t'] / 1000:.3f}</td><td>{html.escape(e['sentinel'])}</td><td>{html.escape(e['event'])}</td>"
        f"<td>{html.escape(str(e['data']))}</td></tr>"
        for e in doc["sentinel_events"]
    )
    numbers = {id(f): n for n, f in enumerate((f for f in doc["faults"] if f["action"] == "inject"), start=1)}
    faults = "".join(
        f"<tr><td>{numbers.get(id(f), '')}</td><td>{f['t'] / 1000:.3f}</td><td>{html.escape(f['action'])}</td>"
        f"<td>{html.escape(f['fault'])}</td><td>{html.escape(f['node'])}</td></tr>"
        for f in doc["faults"]
    )
    lost = ", ".join(html.escape(k) for k in findings["lost_examples"]) or "none"
    if findings["lost_acked"]:
        span = findings["lost_acked"]
        lost += f" (acknowledged between {span['start_ms'] / 1000:.3f} s and {span['end_ms'] / 1000:.3f} s)"
    steps = "".join(
        f"<tr><td>{html.escape(st['step'])}</td><td>{st['start_ms'] / 1000:.3f}</td><td>{st['end_ms'] / 1000:.3f}</td>"
        f"<td>{st['unavailable_ms'] / 1000:.3f}</td><td>{'n/a' if st['lost'] is None else st['lost']}</td></tr>"
        for st in findings["steps"]
    )
    if steps:
        steps = (
            "<h2>Steps</h2><table><tr><th>step</th><th>from</th><th>to</th><th>longest unavailability</th>"
            f"<th>acknowledged writes lost</th></tr>{steps}</table>"
        )
    notes = "".join(f"<p><b>Note:</b> {html.escape(n)}</p>" for n in findings["notes"])
    servers = ", ".join(f"{html.escape(n)}: {html.escape(b)}" for n, b in doc["lab"]["servers"].items())
    picture = base64.b64encode(png).decode()
    lab = doc["lab"]
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>drill {html.escape(doc["scenario"])}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left;font-size:13px}} img{{max-width:100%}}</style></head>
<body><h1>Drill {html.escape(doc["scenario"])}</h1>
<p>Lab {html.escape(lab["name"])} ({html.escape(lab["backend"])}, profile {html.escape(lab["profile"])},
down-after {lab["down_after_ms"]} ms), {doc["clients"]} clients, {html.escape(doc["workload"])} workload
{f"at {doc['rate']:g} operations/s" if doc["rate"] else "as fast as they go"},
generated {html.escape(doc["generated_at"])} on {html.escape(_machine_line(doc["machine"]))}.
Servers: {servers or "not recorded"}.</p>
<img alt="timeline" src="data:image/png;base64,{picture}">
<h2>Summary</h2><table>{summary}</table>
<p>Lost writes (first 20): {lost}</p>
{notes}{steps}<h2>Windows (seconds since the start)</h2>
<table><tr><th>kind</th><th>from</th><th>to</th><th>length</th><th>detail</th></tr>{windows}</table>
<h2>Faults</h2><table><tr><th>#</th><th>t</th><th>action</th><th>fault</th><th>node</th></tr>{faults}</table>
<h2>Sentinel events</h2><table><tr><th>t</th><th>Sentinel</th><th>event</th><th>data</th></tr>{events}</table>
</body></html>
"""
