"""A soak's report: ``soak.json`` (every figure), ``soak.png`` (the whole run per second, then one
zoomed panel per fault step, per 100 ms) and ``soak.html`` (the steps with their own figures, the
picture, the verdict), beside the history ``history.jsonl.gz``."""

from __future__ import annotations

import base64
import html
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.drill.pages import machine, machine_line, page, table
from lab.drill.story import in_s
from lab.failover import TILT_PERIOD_S

if TYPE_CHECKING:
    from lab.drill.soakcheck import SoakResult
    from lab.spec import LabSpec

PANELS_MAX = 24  # zoomed panels drawn (the first ones; every step is in the table and soak.json)


def soak_document(result: SoakResult, spec: LabSpec) -> dict[str, Any]:
    f = result.findings
    return {
        "kind": "soak",
        "generated_at": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine(),
        "lab": {"name": spec.name, "backend": spec.backend, "profile": spec.profile},
        "seed": result.seed,
        "faults": list(result.faults),
        "interval_s": list(result.interval),
        "duration_s": result.duration,
        "workload": result.workload,
        "seconds": round(result.seconds, 3),
        "check_seconds": f.check_seconds,
        "partial": f.partial,
        "stopped": f.stopped,
        "summary": f.summary(),
        "linearizable": result.linearizable,
        "steps": [{k: v for k, v in vars(step).items() if k not in ("zoom", "roles")} for step in f.steps],
        "per_second": f.per_second,
        "files": {"history": result.history.name, "picture": "soak.png", "html": "soak.html"},
    }


def draw(result: SoakResult, nodes: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = result.findings
    steps = f.steps[:PANELS_MAX]
    columns = 4
    rows = 1 + (len(steps) + columns - 1) // columns
    fig = plt.figure(figsize=(14, 2.8 + 2.2 * (rows - 1)))
    grid = fig.add_gridspec(rows, columns, height_ratios=[1.4] + [1.0] * (rows - 1), hspace=0.6, wspace=0.25)
    overview = fig.add_subplot(grid[0, :])
    seconds = [row[0] for row in f.per_second]
    _bars(overview, seconds, [row[1] for row in f.per_second], 1.0, "#1e8449", "acknowledged per s")
    _bars(overview, seconds, [row[2] for row in f.per_second], 1.0, "#c0392b", "failed or unknown per s")
    for step in f.steps:
        end = (step.end_ms if step.end_ms is not None else f.duration_ms) / 1000
        overview.axvspan(step.start_ms / 1000, end, color="#7f8c8d", alpha=0.18, lw=0)
        overview.text(step.start_ms / 1000, 1.0, str(step.index), transform=overview.get_xaxis_transform(), fontsize=7)
    overview.set_title(
        f"soak, seed {result.seed}: {len(f.steps)} steps, {f.ok:,} acknowledged, {f.lost:,} lost, "
        f"{f.failovers} failover{'s' * (f.failovers != 1)} (grey: a fault, its heal and the convergence)",
        fontsize=10,
    )
    overview.set_xlabel("seconds since the soak started", fontsize=8)
    overview.set_ylabel("operations", fontsize=8)
    overview.legend(loc="upper right", fontsize=7, frameon=False)
    colours = {"master": "#1f4e9c", "replica": "#9ec3e6", "down": "#c0392b"}
    for i, step in enumerate(steps):
        ax = fig.add_subplot(grid[1 + i // columns, i % columns])
        t = [(z[0] - step.start_ms) / 1000 for z in step.zoom]
        _bars(ax, t, [z[1] for z in step.zoom], 0.1, "#1e8449")
        _bars(ax, t, [-z[2] for z in step.zoom], 0.1, "#c0392b")
        top = max((z[1] for z in step.zoom), default=1) or 1
        lanes: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
        for t_ms, node, role in step.roles:  # one scatter per node and role (thousands of samples)
            if node in nodes:
                xs, ys = lanes.setdefault((node, role), ([], []))
                xs.append((t_ms - step.start_ms) / 1000)
                ys.append(top * (1.05 + 0.1 * nodes.index(node)))
        for (_node, role), (xs, ys) in lanes.items():
            ax.scatter(xs, ys, s=3, marker="s", color=colours.get(role, "#999"), linewidths=0)
        ax.axvline(0, color="#555", ls="--", lw=0.8)
        lost = f", {step.lost} lost" if step.lost else ""
        ax.set_title(f"{step.index} {step.fault}: {in_s(step.unavailable_ms)} unavailable{lost}", fontsize=8)
        ax.tick_params(labelsize=6)
    fig.subplots_adjust(left=0.05, right=0.98, top=0.95, bottom=0.04)
    fig.savefig(path, dpi=90)  # (no bbox_inches="tight": it draws the figure twice)
    plt.close(fig)


def _bars(ax: Any, starts: list[float], heights: list[float], width: float, colour: str, label: str = "") -> None:
    """Bars as one filled step outline (a soak has thousands: one patch each takes seconds to draw)."""
    if not starts:
        return
    edges, values = [starts[0]], []
    for start, height in zip(starts, heights, strict=True):
        if start > edges[-1] + 1e-9:  # a gap with no operation: a zero bar
            values.append(0.0)
            edges.append(start)
        values.append(height)
        edges.append(start + width)
    ax.stairs(values, edges, fill=True, color=colour, label=label or None, baseline=0)


def render(doc: dict[str, Any], png: bytes) -> str:
    s = doc["summary"]
    state = (
        "partial: interrupted; the history ends where the interrupt came"
        if doc["partial"]
        else (f"stopped early: {doc['stopped']}" if doc["stopped"] else "ran to the end")
    )
    lin = doc["linearizable"]
    verdict = ""
    if lin is not None:
        valid = {True: "linearizable", False: "NOT linearizable", None: "unknown"}[lin["valid"]]
        verdict = (
            f"<p id=linearizable>Register workload: {lin['operations']:,} operations on {lin['keys']} keys: "
            f"<b>{valid}</b></p>"
        )
        verdict += "".join(f"<p class=note>{html.escape(v)}</p>" for v in lin["violations"])
    rows = [
        [
            str(st["index"]),
            html.escape(st["fault"]),
            html.escape(", ".join(dict.fromkeys(st["nodes"]))),
            f"{st['start_ms'] / 1000:.1f}",
            f"{st['unavailable_ms'] / 1000:.3f}",
            f"{st['lost']:,}",
            str(st["failovers"]),
            f"{st['two_masters_ms'] / 1000:.2f}",
            str(st["forks"]),
            "-" if st["converged_ms"] is None else f"{st['converged_ms'] / 1000:.2f}",
            f"{st['ok']:,}",
            f"{st['failed']:,}",
            html.escape("; ".join(st.get("setbacks", [])) or "-"),
        ]
        for st in doc["steps"]
    ]
    head = [
        "#",
        "fault",
        "nodes",
        "at (s)",
        "longest unavailable (s)",
        "lost",
        "failovers",
        "two masters (s)",
        "server forks",
        "converged in (s)",
        "ok",
        "failed",
        "Sentinel setbacks",
    ]
    picture = base64.b64encode(png).decode()
    failovers = f"{s['failovers']} failover{'s' * (s['failovers'] != 1)}"
    body = f"""<header><h1>Soak, seed <code>{doc["seed"]}</code></h1>
<p class="meta">Lab <b>{html.escape(doc["lab"]["name"])}</b> · {html.escape(doc["lab"]["backend"])} backend ·
{html.escape(doc["workload"])} workload · faults {html.escape(", ".join(doc["faults"]))} · quiet
{doc["interval_s"][0]:g}-{doc["interval_s"][1]:g} s · asked {doc["duration_s"]:g} s · took {doc["seconds"]:.1f} s</p>
<p class="meta">Generated {html.escape(doc["generated_at"])} on {html.escape(machine_line(doc["machine"]))}</p></header>
<p class="story" id="story">{len(doc["steps"])} faults in {in_s(s["duration_ms"])};
{s["ok"]:,} operations
acknowledged, {s["lost"]:,} acknowledged writes lost, {failovers}, two masters for
{in_s(s["two_masters_ms"])}, the longest time without an acknowledged write {in_s(s["unavailable_ms"])};
the soak {html.escape(state)}. Replay it with
<code>--seed {doc["seed"]}</code>.</p>
{verdict}
<figure><img alt="the soak per second, and each step zoomed" src="data:image/png;base64,{picture}">
<figcaption>Top: operations per second for the whole soak (green acknowledged, red failed or of unknown outcome),
grey where a fault, its heal and the lab's convergence ran. Below: each step from 2 s before its fault, per 100 ms,
with each data node's sampled role on top (blue master, light blue replica, red down).</figcaption></figure>
<h2>Steps</h2>{table(head, rows, {0, 3, 4, 5, 6, 7, 8, 9, 10, 11})}
<p class="meta">Sentinel setbacks: what a Sentinel said during the step when it would not act (<code>+tilt</code>:
nothing for at least {TILT_PERIOD_S:g} s), gave a failover up (<code>-failover-abort-*</code>) or finished one late
(<code>+failover-end-for-timeout</code>).</p>"""
    return page(f"soak seed {doc['seed']} on lab {doc['lab']['name']}", body)


def write_soak_report(result: SoakResult, spec: LabSpec, directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"json": directory / "soak.json", "png": directory / "soak.png", "html": directory / "soak.html"}
    doc = soak_document(result, spec)
    paths["json"].write_text(json.dumps(doc, indent=2))
    draw(result, [n.name for n in spec.redis_nodes], paths["png"])
    paths["html"].write_text(render(doc, paths["png"].read_bytes()))
    return paths
