"""The client matrix (`lab clients`): every client library, in its default and its recommended
settings, through every failover scenario, each cell a recorded drill (lab.drill.scenarios) checked the
same way. Written as matrix.json, matrix.md and matrix.html beside one report per cell."""

from __future__ import annotations

import html
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lab import control, faults
from lab.drill.clients import CLIENTS, SETTINGS, glide_sentinel_support, node_version
from lab.drill.report import machine
from lab.drill.result import DrillResult
from lab.drill.scenarios import SCENARIOS, run_drill
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
    "kill-sentinel": 6.0,
    "freeze-sentinel-kill-master": 10.0,
    "kill-master-and-sentinel": 8.0,
}
ERROR_CLASSES = ("READONLY", "refused", "timeout", "NOREPLICAS", "other")
RECOVERY_WINDOW_MS = 2000.0  # a client recovered if it acknowledged writes in the workload's last 2 s
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
        recovered=any(t >= end - RECOVERY_WINDOW_MS for t in acked),
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
) -> list[Cell]:
    check_matrix(clients, scenarios, settings)
    cells = []
    started = time.perf_counter()
    for scenario in scenarios:
        for client in clients:
            for setting in settings:
                faults.heal(spec)
                control.wait_healthy(spec, timeout=60)
                directory = report_dir / scenario / f"{client}-{setting}"
                duration = DURATIONS[scenario]
                result = run_drill(
                    spec,
                    scenario,
                    duration=duration,
                    clients=WORKERS,
                    report_dir=directory,
                    client=client,
                    settings=setting,
                )
                cell = cell_of(result, client, setting)
                cells.append(cell)
                progress(
                    f"{scenario:<28} {client:<10} {setting:<11} unavailable {cell.unavailable_s:>5.2f}s "
                    f"lost {cell.lost:<7} duplicated {cell.duplicated:<4} recovered {'yes' if cell.recovered else 'NO'}"
                )
    about = {
        "servers": sorted({f"{b.flavour} {b.release}" for n in spec.nodes if (b := spec.server(n)) is not None}),
        "backend": spec.backend,
        "node": node_version(),
        "machine": machine(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_matrix(cells, report_dir, about)
    return cells


def _columns(c: Cell) -> dict[str, str]:
    """One row of the table."""
    return {
        "client": f"{c.client} {c.version}",
        "settings": c.settings,
        "scenario": c.scenario,
        "unavailable (s)": f"{c.unavailable_s:.2f}",
        "nothing kept (s)": f"{c.nothing_kept_s:.2f}",
        **{name: str(c.errors[name]) for name in ERROR_CLASSES},
        "lost": str(c.lost),
        "duplicated": str(c.duplicated),
        "failed but applied": str(c.errored_but_applied),
        "recovered": "yes" if c.recovered else "NO",
    }


def markdown(cells: list[Cell]) -> str:
    names = list(_columns(cells[0])) if cells else []
    rows = ["| " + " | ".join(_columns(c).values()) + " |" for c in cells]
    return "\n".join(["| " + " | ".join(names) + " |", "|" + "---|" * len(names), *rows])


def write_matrix(cells: list[Cell], directory: Path, about: dict[str, Any]) -> None:
    """``about``: what the matrix ran on (server builds, backend, Node.js, machine, seconds)."""
    directory.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "schema_version": 1,
        **about,
        "workers_per_client": WORKERS,
        "workload": "each worker RPUSHes increasing integers onto its own list",
        "valkey_glide": glide_sentinel_support(),
        "cells": [asdict(c) for c in cells],
    }
    (directory / "matrix.json").write_text(json.dumps(doc, indent=2))
    (directory / "matrix.md").write_text(markdown(cells) + f"\n\n{doc['valkey_glide']}.\n")
    head = "".join(f"<th>{html.escape(name)}</th>" for name in (_columns(cells[0]) if cells else {}))
    body = ""
    for c in cells:
        link = html.escape(Path(c.report).relative_to(directory).as_posix()) if c.report else ""
        row = "".join(f"<td>{html.escape(v)}</td>" for v in _columns(c).values())
        body += f'<tr>{row}<td><a href="{link}">report</a></td></tr>'
    (directory / "matrix.html").write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>client matrix</title><style>"
        "body{font-family:sans-serif;margin:2em} td,th{border:1px solid #ccc;padding:2px 6px;font-size:13px}"
        "table{border-collapse:collapse}</style></head><body><h1>Client behaviour in failover</h1>"
        f"<table><tr>{head}<th></th></tr>{body}</table><p>{html.escape(doc['valkey_glide'])}.</p></body></html>\n"
    )


def default_scenarios() -> list[str]:
    return [s for s in DURATIONS if s in SCENARIOS]
