"""The client matrix (`lab clients`): every client library, in its default and its recommended
settings, through every failover scenario, each cell a recorded drill (lab.drill.scenarios) checked the
same way. Written as matrix.json, matrix.md and matrix.html beside one report per cell."""

from __future__ import annotations

import datetime
import html
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from lab import control, faults
from lab.drill.clients import CLIENTS, SETTINGS, glide_sentinel_support, node_version
from lab.drill.pages import machine, machine_line, page, table
from lab.drill.result import DrillResult
from lab.drill.scenarios import LINK_AND_CLOCK_SCENARIOS, SCENARIOS, check_supported, run_drill
from lab.errors import LabError, UsageError
from lab.spec import LabSpec

#: Scenario -> seconds of workload: long enough for the fault, Sentinel's reaction and a recovery.
DURATIONS = {
    "kill-master": 8.0,
    "freeze-master": 12.0,
    "isolate-master": 14.0,
    "isolate-master-guarded": 14.0,
    "failover": 6.0,
    "failover-unsafe": 6.0,
    "failover-coordinated": 6.0,
    "kill-sentinel": 6.0,
    "freeze-sentinel-kill-master": 10.0,
    "kill-master-and-sentinel": 8.0,
    "lossy-master": 14.0,
    "slow-replication": 10.0,
    "one-way-master": 14.0,
    "flapping-partition": 14.0,
    "latency-spike": 10.0,
    "sentinel-clock-jump": 10.0,
}
#: What `lab clients` runs when --scenarios is left out: the node faults (link drills are asked for by name).
DEFAULT_SCENARIOS = tuple(
    name for name in DURATIONS if name not in LINK_AND_CLOCK_SCENARIOS and SCENARIOS[name].requires is None
)
ERROR_CLASSES = ("READONLY", "refused", "timeout", "NOREPLICAS", "other")
RECOVERY_WINDOW_MS = 2000.0  # a client recovered if each worker acknowledged writes in the workload's last 2 s
WORKERS = 2


@dataclass
class Cell:
    client: str
    version: str
    settings: str
    scenario: str
    ok: int
    unavailable_s: float
    nothing_kept_s: float
    errors: dict[str, int]
    lost: int
    duplicated: int
    errored_but_applied: int
    indeterminate: int
    recovered: bool
    failovers: int
    report: str
    run: int = 1  # which run of the cell (`lab clients --repeat N`)


def classify(errors: dict[str, int]) -> dict[str, int]:
    """The matrix's five error columns from the adapters' classes."""
    out = dict.fromkeys(ERROR_CLASSES, 0)
    for name, count in errors.items():
        out[name if name in out else "other"] += count
    return out


def check_matrix(clients: list[str], scenarios: list[str], settings: list[str]) -> None:
    """Every name known (a UsageError otherwise) and every client runnable here (a LabError)."""
    for option, names, known in (
        ("--clients", clients, list(CLIENTS)),
        ("--scenarios", scenarios, list(DURATIONS)),
        ("--settings", settings, list(SETTINGS)),
    ):
        if not names:
            raise UsageError(f"{option} names none (choose from: {', '.join(known)}; leave it out for all)")
        for name in names:
            if name not in known:
                raise UsageError(f"{option}: unknown {name!r} (choose from: {', '.join(known)})")
    for name in clients:
        if why := CLIENTS[name].missing():
            raise LabError(f"client {name} cannot run here: {why}")


def recovered(records: list[dict[str, Any]], end: float) -> bool:
    """Every worker had a write acknowledged in the workload's last RECOVERY_WINDOW_MS: one worker dead
    for good behind a live one is a stuck client, not a recovered one."""
    last: dict[Any, float] = {}
    for r in records:
        if r["type"] == "invoke":
            last.setdefault(r["process"], -1.0)
        elif r["type"] == "ok" and r["t"] <= end:
            last[r["process"]] = max(last.get(r["process"], -1.0), r["t"])
    return bool(last) and all(t >= end - RECOVERY_WINDOW_MS for t in last.values())


def cell_of(result: DrillResult, client: str, settings: str) -> Cell:
    findings = result.findings
    records = result.recorder.history.records
    # The workload's real end: a scenario whose steps outlast the planned duration runs on past it.
    end = next(r["t"] for r in records if r["type"] == "drill" and r.get("event") == "stop")
    acked = [r["t"] for r in records if r["type"] == "ok"]
    return Cell(
        client=client,
        version=CLIENTS[client].version(),
        settings=settings,
        scenario=result.scenario,
        ok=len(acked),
        unavailable_s=round(findings.unavailable_longest_ms / 1000, 2),
        nothing_kept_s=round(max((w.ms for w in findings.nothing_kept), default=0.0) / 1000, 2),
        errors=classify(findings.errors),
        lost=findings.lost,
        duplicated=findings.duplicated,
        errored_but_applied=findings.errored_but_applied,
        indeterminate=findings.indeterminate,
        recovered=recovered(records, end),
        failovers=len(findings.failovers),
        report=str(result.report_dir / "report.html") if result.report_dir else "",
    )


def run_matrix(
    spec: LabSpec,
    clients: list[str],
    scenarios: list[str],
    settings: list[str],
    report_dir: Path,
    progress: Callable[[str], None] = print,
    repeat: int = 1,
) -> list[Cell]:
    """Every cell ``repeat`` times (each run on the healed lab, its report under ``run-K/``). A scenario this lab
    cannot run is refused before the first cell, not after the cells before it."""
    check_matrix(clients, scenarios, settings)
    for scenario in scenarios:
        check_supported(spec, scenario, "scenario")
    cells = []
    started = time.perf_counter()
    for scenario in scenarios:
        for client in clients:
            for setting in settings:
                for run in range(1, repeat + 1):
                    faults.heal(spec)
                    control.wait_healthy(spec, timeout=60)
                    directory = report_dir / scenario / f"{client}-{setting}"
                    result = run_drill(
                        spec,
                        scenario,
                        duration=DURATIONS[scenario],
                        clients=WORKERS,
                        report_dir=directory / f"run-{run}" if repeat > 1 else directory,
                        client=client,
                        settings=setting,
                    )
                    cell = replace(cell_of(result, client, setting), run=run)
                    cells.append(cell)
                    progress(progress_line(cell, repeat))
    write_matrix(cells, report_dir, run_about(spec, started))
    return cells


def progress_line(cell: Cell, repeat: int) -> str:
    """The line a matrix prints as each cell ends."""
    return (
        f"{cell.scenario:<28} {cell.client:<10} {cell.settings:<11} {f'run {cell.run} ' if repeat > 1 else ''}"
        f"unavailable {cell.unavailable_s:>5.2f}s lost {cell.lost:<7} duplicated "
        f"{cell.duplicated:<4} recovered {'yes' if cell.recovered else 'NO'}"
    )


def run_about(spec: LabSpec, started: float) -> dict[str, Any]:
    """What a matrix ran on (matrix.json): the server builds, the backend, Node.js, the machine, and the
    seconds since ``started`` (perf_counter)."""
    return {
        "servers": sorted({f"{b.flavour} {b.release}" for n in spec.nodes if (b := spec.server(n)) is not None}),
        "backend": spec.backend,
        "node": node_version(),
        "machine": machine(),
        "seconds": round(time.perf_counter() - started, 1),
    }


def groups(cells: list[Cell]) -> list[list[Cell]]:
    """The runs of each cell together (``--repeat``), in the order the cells ran."""
    by: dict[tuple[str, str, str], list[Cell]] = {}
    for c in cells:
        by.setdefault((c.client, c.settings, c.scenario), []).append(c)
    return list(by.values())


def _figure(values: list[float], form: str) -> str:
    """One run: the value; several: median (worst)."""
    middle, worst = format(statistics.median(values), form), format(max(values), form)
    return middle if middle == worst else f"{middle} ({worst})"


def _counted(values: list[int]) -> str:
    """One run: the count; several: the runs it happened in, k of N, and the most in one run."""
    hit = [v for v in values if v]
    if len(values) == 1 or not hit:
        return f"{values[0]:,}" if len(values) == 1 else "0"
    return f"{len(hit)} of {len(values)} runs, up to {max(hit):,}"


def _columns(group: list[Cell]) -> dict[str, str]:
    """One row of the table: one cell, or all runs of one cell."""
    c, n = group[0], len(group)
    stuck = sum(1 for g in group if not g.recovered)
    recovered = ("NO" if stuck else "yes") if n == 1 else ("yes" if not stuck else f"NO in {stuck} of {n}")
    return {
        "client": f"{c.client} {c.version}",
        "settings": c.settings,
        "scenario": c.scenario,
        "unavailable (s)": _figure([g.unavailable_s for g in group], ".2f"),
        "nothing kept (s)": _figure([g.nothing_kept_s for g in group], ".2f"),
        **{name: _figure([g.errors[name] for g in group], ",.0f") for name in ERROR_CLASSES},
        "lost": _counted([g.lost for g in group]),
        "duplicated": _counted([g.duplicated for g in group]),
        "failed but applied": _counted([g.errored_but_applied for g in group]),
        "recovered": recovered,
    }


def markdown(cells: list[Cell]) -> str:
    rows_of = groups(cells)
    names = list(_columns(rows_of[0])) if rows_of else []
    rows = ["| " + " | ".join(_columns(g).values()) + " |" for g in rows_of]
    return "\n".join(["| " + " | ".join(names) + " |", "|" + "---|" * len(names), *rows])


#: What each column of the matrix and each outcome word means (matrix.html's legend).
LEGEND = {
    "client": "the client library and its version (redis-py in this Python, ioredis and node-redis in Node.js)",
    "settings": "defaults: the library's own; recommended: the settings docs/clients.md derives from this matrix",
    "scenario": "the failover drill the cell ran (lab drill SCENARIO), with WORKERS workers RPUSHing unique values",
    "unavailable (s)": "the longest time without an acknowledged write, in seconds",
    "nothing kept (s)": "the same, counting acknowledged writes that were later lost as not written",
    "READONLY": "writes refused by a node that had become a replica (operations, did not happen)",
    "refused": "connections refused: the node was down (operations, did not happen)",
    "timeout": "no answer in time: the write may have happened (operations)",
    "NOREPLICAS": "writes refused by a master with too few replicas in reach (min-replicas-to-write)",
    "other": (
        "every other error, by the client's own class: connections lost after sending (closed: may have "
        "happened), the Sentinels naming no master (no master), MASTERDOWN, a library's own errors; the cell's "
        "report counts them by name"
    ),
    "lost": "acknowledged writes absent after the heal",
    "duplicated": "values that landed twice (the client resent a write after a reconnect)",
    "failed but applied": "writes the client was told had failed that are there after all",
    "recovered": (
        "yes: every worker had writes acknowledged in the last 2 s of the workload; NO: a worker had none (its "
        "client was stuck, or dead for good); with --repeat, in how many runs (NO in k of N)"
    ),
}
#: The outcomes a reader must not miss: (column, the cell's test).
BAD: dict[str, Callable[[Cell], bool]] = {
    "lost": lambda c: c.lost > 0,
    "duplicated": lambda c: c.duplicated > 0,
    "failed but applied": lambda c: c.errored_but_applied > 0,
    "recovered": lambda c: not c.recovered,
}


def write_matrix(cells: list[Cell], directory: Path, about: dict[str, Any]) -> None:
    """``about``: what the matrix ran on (server builds, backend, Node.js, machine, seconds)."""
    directory.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "schema_version": 1,
        "generated_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **about,
        "workers_per_client": WORKERS,
        "workload": "each worker RPUSHes increasing integers onto its own list",
        "valkey_glide": glide_sentinel_support(),
        "cells": [asdict(c) for c in cells],
    }
    (directory / "matrix.json").write_text(json.dumps(doc, indent=2))
    (directory / "matrix.md").write_text(markdown(cells) + f"\n\n{doc['valkey_glide']}.\n")
    (directory / "matrix.html").write_text(matrix_html(cells, doc, directory))


def matrix_html(cells: list[Cell], doc: dict[str, Any], directory: Path) -> str:
    """The matrix as a page: what it ran on, the table (a bad outcome is marked ✗ and coloured), the legend."""
    rows_of = groups(cells)
    names = list(_columns(rows_of[0])) if rows_of else []
    numeric = {i for i, name in enumerate(names) if name not in ("client", "settings", "scenario", "recovered")}
    rows = []
    for group in rows_of:
        row = []
        for name, value in _columns(group).items():
            bad = name in BAD and any(BAD[name](c) for c in group)
            row.append(f'<span class="bad">✗ {html.escape(value)}</span>' if bad else html.escape(value))
        links = [
            f'<a href="{html.escape(Path(c.report).relative_to(directory).as_posix())}">'
            f"{'report' if len(group) == 1 else c.run}</a>"
            for c in group
            if c.report
        ]
        rows.append([*row, " ".join(links)])
    grid = table([*map(html.escape, names), "report"], rows, numeric, marked="bad", kind="grid")
    versions = sorted({f"{c.client} {c.version}" for c in cells})
    flagged = [c for c in cells if any(test(c) for test in BAD.values())]
    repeated = len(cells) > len(rows_of)
    counted = f"{len(rows_of)} cells{f', {len(cells)} runs' if repeated else ''}; {len(flagged)}{' runs' * repeated}"
    told = "; ".join(
        f"{c.client} ({c.settings}) in {c.scenario}{f' run {c.run}' if repeated else ''}: {_what_went_wrong(c)}"
        for c in flagged[:6]
    )
    more = f"; {len(flagged) - 6} more" if len(flagged) > 6 else ""
    legend = "".join(
        f"<dt>{html.escape(name)}</dt><dd>{html.escape(text.replace('WORKERS', str(WORKERS)))}</dd>"
        for name, text in LEGEND.items()
    )
    legend += (
        "<dt>✗</dt><dd>a bad outcome: writes lost, written twice or applied after an error, or a client stuck</dd>"
    )
    body = f"""<header><h1>Client behaviour in failover</h1>
<p class="meta">Generated <b>{html.escape(doc["generated_at"])}</b> · {html.escape(doc["backend"])} backend ·
servers {html.escape(", ".join(doc["servers"]) or "not recorded")} · {doc["workers_per_client"]} workers per client ·
{len(cells)} cells in {doc["seconds"]:.0f} s{f" on {doc['labs']} labs at once" if doc.get("labs", 1) > 1 else ""}</p>
<p class="meta">Clients: {html.escape(", ".join(versions))} · Node.js {html.escape(doc["node"] or "none")}</p>
<p class="meta">Machine: {html.escape(machine_line(doc["machine"]))}</p></header>
<p class="story">{counted} with a bad outcome (marked ✗){":" if flagged else "."}
{html.escape(told + more)}{"." if flagged else ""}</p>
{grid}
<h2>Legend</h2><dl class="legend">{legend}</dl>
<p class="meta">{html.escape(doc["valkey_glide"])}.</p>"""
    return page("client matrix", body)


def _what_went_wrong(c: Cell) -> str:
    wrong = [
        f"{c.lost:,} acknowledged writes lost" if c.lost else "",
        f"{c.duplicated:,} written twice" if c.duplicated else "",
        f"{c.errored_but_applied:,} applied after an error" if c.errored_but_applied else "",
        "stuck (a worker had no write acknowledged in the last 2 s)" if not c.recovered else "",
    ]
    return ", ".join(w for w in wrong if w)


def default_scenarios() -> list[str]:
    return [s for s in DEFAULT_SCENARIOS if s in SCENARIOS]
