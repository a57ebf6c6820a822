"""A drill's report: ``report.json`` (summary + findings, see docs/report.schema.json),
``history.jsonl`` (every record), ``timeline.png`` (lab.drill.timeline) and a self-contained ``report.html``
(the story in one sentence from lab.drill.story, the picture embedded, the tables with labels and units, the
Sentinel event log; its style from lab.drill.pages, which matrix.html shares)."""

from __future__ import annotations

import base64
import datetime
import html
import json
import shutil
from collections import defaultdict
from contextlib import suppress
from pathlib import Path
from typing import Any

from lab import interrupts
from lab.drill.alerting import alert_rows, first_fault_ms, unnoticed_pages, verdict
from lab.drill.checker import fault_spans
from lab.drill.history import Record
from lab.drill.pages import machine, machine_line, page, table
from lab.drill.result import DrillResult
from lab.drill.story import error_meaning, in_s, story, summary_rows
from lab.drill.timeline import draw_timeline
from lab.errors import UsageError
from lab.home import claimed
from lab.spec import LabSpec

SCHEMA_VERSION = 1


def check_destination(
    directory: Path, option: str = "--report", home: Path | None = None, lab: str | None = None
) -> Path:
    """Refuse, before a drill starts (a drill kills a master: it cannot be run again for free), a report
    directory it could not write into (a file, a path under a file, a place it may not create files), a
    link, one in a lab's own directory, the home's locks or a system tree (``home``: the lab home), or
    one that holds files already (a previous report would be overwritten file by file, the rest of it left
    mixed in). ``lab``: the lab the command runs on, whose directory is refused before it exists too.
    Creates nothing: what it creates to try is removed again. The absolute path."""
    directory = directory.absolute()
    if directory.is_symlink():
        raise UsageError(f"{option} {directory} is a symbolic link: name the directory itself")
    if home is not None and (why := claimed(directory, home, lab)):
        raise UsageError(f"{option} {directory}: {why}: write it elsewhere")
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
        **({"alerts": alerts_document(result.scenario, records)} if spec.monitoring else {}),
    }


def alerts_document(scenario: str, records: list[Record]) -> dict[str, Any]:
    """report.json's alerts (a lab with monitoring): each rule that went pending or firing, with times on the
    drill's clock and since the first fault, and what the scenario's expectations say of the shipped rules."""
    fault = first_fault_ms(records)
    rows = []
    for row in alert_rows(records):
        entry = row.as_dict()
        entry["firing_after_fault_ms"] = (
            round(row.firing_ms - fault, 3) if row.firing_ms is not None and fault is not None else None
        )
        rows.append(entry)
    health = [{"t": r["t"], "status": r["status"]} for r in records if r["type"] == "health"]
    return {
        "first_fault_ms": fault,
        "rules": rows,
        "expected": verdict(scenario, records),
        "health": health,
        "unnoticed_pages": unnoticed_pages(records),
    }


def _alerts_section(alerts: dict[str, Any] | None) -> str:
    """The alerts table of report.html: when each rule went pending, fired, resolved, and who was notified."""
    if alerts is None:
        return ""

    def sec(ms: float | None) -> str:
        return "-" if ms is None else f"{ms / 1000:.1f}"

    fault = alerts["first_fault_ms"]
    rows = []
    for r in alerts["rules"]:
        after = "-" if r["firing_after_fault_ms"] is None else f"{r['firing_after_fault_ms'] / 1000:+.1f}"
        notified = ", ".join(f"{html.escape(k)} {v / 1000:.1f}" for k, v in r["notified_ms"].items()) or "-"
        rows.append([
            html.escape(r["alert"]), html.escape(r["source"]), html.escape(r["severity"]), sec(r["pending_ms"]),
            sec(r["firing_ms"]), after, sec(r["resolved_ms"]), html.escape(", ".join(r["instances"])), notified,
        ])  # fmt: skip
    head = ["rule", "source", "severity", "pending (s)", "firing (s)", "firing after the fault (s)", "resolved (s)",
            "instances", "notified (receiver, s)"]  # fmt: skip
    expected = alerts["expected"]
    said = [f"missed (must fire): {', '.join(expected['missed'])}"] if expected["missed"] else []
    said += [f"false (must stay quiet): {', '.join(expected['false'])}"] if expected["false"] else []
    verdict_line = "; ".join(said) or "every rule this scenario must fire fired, and none that must stay quiet did"
    at = "" if fault is None else f" The first fault was injected at {fault / 1000:.1f} s."
    states = ("OK", "WARNING", "CRITICAL", "UNKNOWN")
    health = ", ".join(f"{states[h['status']]} at {h['t'] / 1000:.1f} s" for h in alerts.get("health", []))
    if health:
        at += f" check-redis-health, scraped beside them: {health}."
    if alerts.get("unnoticed_pages"):
        at += f" Pages it never saw: {', '.join(alerts['unnoticed_pages'])}."
    tables = table(head, rows, {3, 4, 5, 6}) if rows else "<p>No alert went pending or firing.</p>"
    return f"""<h2>Alerts</h2><p id="alerts-verdict">Shipped rules: {html.escape(verdict_line)}.{at}</p>{tables}"""


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


def _consistency(verdict: dict[str, Any] | None) -> str:
    """The register workload's linearizability verdict, or the list workload's anomalies by kind."""
    if not verdict:
        return ""
    valid = {True: "yes", False: "no", None: "unknown (the search grew too big)"}[verdict["valid"]]
    head = (
        f"<h2>Consistency ({html.escape(verdict['checker'])})</h2><p id=consistency>{verdict['operations']:,} "
        f"operations on {verdict['keys']:,} keys; consistent: <b>{valid}</b>; {verdict['anomalies']:,} anomalies.</p>"
    )
    if verdict["checker"] == "linearizable":
        shown = verdict["violations"] + [f"{key}: unknown" for key in verdict["unknown"]]
        return head + "".join(f"<p class=note>{html.escape(v)}</p>" for v in shown)
    rows = [[html.escape(k), f"{n:,}"] for k, n in verdict["counts"].items()]
    rows += [[f"{html.escape(k)} read (master)", f"{n:,}"] for k, n in verdict["master_reads"].items()]
    rows += [[f"{html.escape(k)} read (replica)", f"{n:,}"] for k, n in verdict["replica_reads"].items()]
    examples = [f"<li>{html.escape(e)}</li>" for group in verdict["examples"].values() for e in group[:2]]
    return head + table(["anomaly", "count"], rows, {1}) + (f"<ul>{''.join(examples)}</ul>" if examples else "")


def render_html(doc: dict[str, Any], png: bytes) -> str:
    """A self-contained page: what happened in one sentence, the key figures, the picture, the summary
    with labels and units, the errors by class, the windows, the faults, the Sentinels' events."""
    findings, s, lab = doc["findings"], doc["summary"], doc["lab"]
    lost_what = "acknowledged increments lost" if s["workload"] == "counter" else "acknowledged writes lost"
    cards = "".join(
        (
            _card(lost_what, f"{s['lost']:,}", s["lost"] > 0),
            _card("longest unavailability", in_s(s["unavailable_ms"])),
            _card("failovers", str(s["failovers"]), s["failovers"] != 1 or None),
            _card("two masters at once", in_s(s["two_masters_ms"]), s["two_masters_ms"] > 0 or None),
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
acknowledging writes. On a lab with monitoring, a last lane: each shipped alert rule pale while pending and in
its severity's colour while firing (page red, ticket orange, info blue), a triangle where a notification of it
reached a receiver. Times are seconds since the drill started.</figcaption></figure>
{"".join(f'<p class="note"><b>Note:</b> {html.escape(n)}</p>' for n in findings["notes"])}
<h2>Summary</h2><table class="kv">{summary}</table>
<h2>Errors by class</h2>{error_table}
<h2>Lost writes</h2><p>First 20: {lost}</p>
{_consistency(findings.get("consistency"))}
{steps_table}
<h2>Windows</h2>{windows_table}
<h2>Faults</h2>{faults_table}
{_alerts_section(doc.get("alerts"))}
<details><summary>Sentinel events ({len(events)})</summary>{events_table}</details>"""
    return page(f"drill {doc['scenario']} on lab {lab['name']}", body)
