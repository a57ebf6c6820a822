"""timeline.png: the data nodes' roles through the heal, one marker per failover, each Sentinel's events in
a thin lane, the clients' operations per 100 ms; bands where no write was acknowledged, where a fault was
being applied, where two nodes were masters or acknowledged writes at once. The legend lists what is drawn."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lab.drill.checker import BUCKET_MS, FaultSpan, Findings, fault_spans, masters_at_once
from lab.drill.history import Record, not_operations
from lab.drill.story import REPLACES_MASTER, fault_groups, in_s

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

    end = max((r["t"] for r in records), default=1000.0) / 1000
    others = sorted(not_operations(records), key=lambda r: r["t"])  # (all but the operations' bars)
    sentinels = sorted({r["sentinel"] for r in others if r["type"] == "sentinel"})
    rules = list(dict.fromkeys(r["alert"] for r in others if r["type"] == "alert" and r["source"] == SHIPPED))
    ratios = [len(nodes) + 1, 0.25 * max(len(sentinels), 1) + 0.6, 2] + ([0.3 * len(rules) + 0.4] if rules else [])
    fig, axes = plt.subplots(
        len(ratios), 1, figsize=(13, 6.2 + (0.3 * len(rules) + 0.6 if rules else 0)), sharex=True,
        gridspec_kw={"height_ratios": ratios},
    )  # fmt: skip
    lanes, events, ops = axes[:3]
    legend: dict[str, Any] = {}  # what is drawn, in this order: the roles first
    _draw_lanes(lanes, others, nodes, legend)
    _draw_failovers(lanes, findings, nodes, legend)
    _draw_events(events, others, sentinels)
    _draw_operations(ops, records, findings)
    if rules:
        _draw_alerts(axes[3], others, rules, end)
    _draw_faults(tuple(axes), others, nodes, sentinels, legend)
    _draw_bands(tuple(axes), others, findings, legend)
    lanes.legend(
        legend.values(), legend.keys(), loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=7, frameon=False
    )
    s = findings.summary()
    failovers = f"{s['failovers']} failover{'' if s['failovers'] == 1 else 's'}"
    two = f"; two masters for {in_s(s['two_masters_ms'])} while the workload ran" if s["two_masters_ms"] else ""
    lanes.set_title(
        f"{title}\n{s['lost']:,} acknowledged writes lost; {failovers}; longest unavailability "
        f"{in_s(s['unavailable_ms'])}{two}; {s['errors']:,} errors",
        fontsize=10,
    )
    ops.set_xlim(0, end)
    if rules:  # the time axis is named under the last panel
        axes[-1].set_xlabel(ops.get_xlabel(), fontsize=ops.xaxis.label.get_fontsize())
        ops.set_xlabel("")
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


#: The shipped rules' alerts (lab.monitoring): the only ones the alerts lane draws.
SHIPPED = "redis-ha-lab"
SEVERITY_COLOURS = {"page": "#c0392b", "ticket": "#e67e22", "info": "#2980b9"}


def _draw_alerts(ax: Any, records: list[Record], rules: list[str], end: float) -> None:
    """A lab with monitoring: one row per shipped rule that went pending or firing, pale while any of its alerts
    was pending, in its severity's colour while any was firing (page red, ticket orange, info blue), a triangle
    where a notification of it firing reached a receiver."""
    rows = {rule: len(rules) - i for i, rule in enumerate(rules)}
    spans: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)  # (rule, state) -> spans, s
    colour: dict[str, str] = {}
    began: dict[tuple[str, str], tuple[str, float]] = {}
    for r in (r for r in records if r["type"] == "alert" and r["source"] == SHIPPED):
        colour[r["alert"]] = SEVERITY_COLOURS.get(r["severity"], "#7f8c8d")
        key = (r["alert"], r["instance"])
        if key in began:
            state, since = began.pop(key)
            spans[(r["alert"], state)].append((since / 1000, r["t"] / 1000))
        if r["state"] in ("pending", "firing"):
            began[key] = (r["state"], r["t"])
    for (alert, _), (state, since) in began.items():  # still up when the recording ended
        spans[(alert, state)].append((since / 1000, end))
    for (alert, state), found in spans.items():
        merged: list[list[float]] = []
        for start, stop in sorted(found):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], stop)
            else:
                merged.append([start, stop])
        pale = state == "pending"
        ax.broken_barh([(a, b - a) for a, b in merged], (rows[alert] - 0.3, 0.6), color=colour[alert],
                       alpha=0.3 if pale else 0.9, lw=0, zorder=2 if pale else 3)  # fmt: skip
    for r in records:
        if r["type"] == "page" and r["source"] == SHIPPED and r["status"] == "firing" and r["alert"] in rows:
            ax.scatter([r["t"] / 1000], [rows[r["alert"]] + 0.42], marker="v", s=22, color="#000", zorder=4)
    ax.set_yticks(list(rows.values()), list(rows), fontsize=7)
    ax.set_ylim(0.4, len(rules) + 0.75)
    ax.set_ylabel("alerts", fontsize=7)


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
    lanes, events = axes[:2]
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
UNDONE = {
    "kill": "restarted", "stop": "restarted", "freeze": "thawed", "isolate": "reconnected", "degrade": "restored",
    "flap": "steady", "clock": "clock set right",
}  # fmt: skip


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
