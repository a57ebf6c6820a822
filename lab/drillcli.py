"""`lab drill`: bring the lab up if needed, run the scenario under the lab's lock, print the summary,
and gate on findings (`--fail-on lost>0`): a drill that ran exits 0 unless a gate says otherwise."""

from __future__ import annotations

import argparse
import datetime
import operator
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from lab import control, interrupts, servers, state
from lab.checker import Findings, Window
from lab.errors import LabError
from lab.lock import lab_lock
from lab.scenarios import SCENARIOS, run_drill
from lab.spec import LabSpec

CONDITION = re.compile(r"^\s*([a-z_]+)\s*(>=|<=|==|!=|>|<)\s*(-?\d+(?:\.\d+)?)\s*$")
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


def parse_conditions(texts: list[str], metrics: list[str]) -> list[tuple[str, str, float]]:
    conditions = []
    for text in texts:
        match = CONDITION.match(text)
        if not match:
            raise LabError(f"--fail-on {text!r}: expected METRIC OP NUMBER, e.g. 'lost>0'")
        metric, op, value = match.groups()
        if metric not in metrics:
            raise LabError(f"--fail-on {text!r}: unknown metric {metric!r} (choose from: {', '.join(metrics)})")
        conditions.append((metric, op, float(value)))
    return conditions


def failing(summary: dict[str, Any], conditions: list[tuple[str, str, float]]) -> list[str]:
    return [f"{m}={summary[m]:g} {op} {v:g}" for m, op, v in conditions if OPERATORS[op](float(summary[m]), v)]


def _span(window: Window | None) -> str:
    return "-" if window is None else f"{window.start_ms / 1000:.3f}-{window.end_ms / 1000:.3f} s"


def summary_table(scenario: str, findings: Findings, seconds: float) -> Table:
    s = findings.summary()
    table = Table(title=f"drill {scenario}: {seconds:.1f} s, {s['workload']} workload")
    table.add_column("finding")
    table.add_column("value", justify="right")
    rows = [
        ("operations acknowledged", s["ok"]),
        ("operations failed (did not happen)", s["failed"]),
        ("indeterminate writes (survived)", f"{s['indeterminate']} ({s['indeterminate_survived']})"),
        ("acknowledged writes lost", s["lost"]),
        ("lost writes acknowledged", _span(findings.lost_acked)),
        ("failed writes applied anyway", s["errored_but_applied"]),
        ("stale reads", s["stale_reads"]),
        ("split brain (two nodes acknowledging)", f"{s['split_brain_ms'] / 1000:.2f} s"),
        ("longest unavailability", f"{s['unavailable_ms'] / 1000:.2f} s"),
        ("total unavailability", f"{s['unavailable_total_ms'] / 1000:.2f} s"),
        ("longest window with nothing kept", f"{s['nothing_kept_ms'] / 1000:.2f} s"),
        ("failovers (epochs)", f"{s['failovers']} ({s['epochs']})"),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    return table


def _running_lab(args: argparse.Namespace, err: Console, server: list[str] | None = None) -> Path:
    """The lab's home, after starting the lab (on ``server``) when it does not run yet. An interrupt
    while it starts removes it again (lab.control); one after leaves it running, and says so."""
    home: Path = args.home or state.default_home()
    if not state.exists(home, args.name):
        interrupts.new_lab(home, args.name)
        started = control.up(args.name, args.profile, args.backend, home, server=server or ())
        err.print(f"lab {args.name} is healthy after {started.seconds:.2f}s", markup=False)
    return home


def _upgrade_path(args: argparse.Namespace) -> tuple[list[str], list[servers.Server]]:
    """rolling-upgrade's --from (as ``--server`` values) and --to builds; checked before anything starts."""
    if args.scenario != "rolling-upgrade":
        if args.upgrade_from or args.upgrade_to:
            raise LabError("--from and --to belong to the rolling-upgrade drill")
        return [], []
    if not args.upgrade_to:
        raise LabError("rolling-upgrade needs --to BUILD[,BUILD...] (see `lab servers`)")
    start = [args.upgrade_from] if args.upgrade_from else []
    if args.upgrade_from:
        servers.resolve(args.upgrade_from)
    return start, [servers.resolve(name.strip()) for name in args.upgrade_to.split(",") if name.strip()]


def _check_from(spec: LabSpec, start: list[str]) -> None:
    """A running lab must run the --from build on every node (a new one is started on it)."""
    if not start:
        return
    wanted = servers.resolve(start[0])
    for node in spec.nodes:
        build = spec.server(node) or servers.system()
        if build != wanted:
            raise LabError(
                f"lab {spec.name} runs {build.name} on {node.name}, not {wanted.name} (--from): "
                f"`lab down --name {spec.name}` first, and the drill starts it on {wanted.name}"
            )


def steps_table(findings: Findings) -> Table:
    table = Table(title="steps")
    for column in ("step", "from s", "to s", "unavailable s", "lost"):
        table.add_column(column, justify="left" if column == "step" else "right")
    for st in findings.steps:
        table.add_row(
            st["step"],
            f"{st['start_ms'] / 1000:.2f}",
            f"{st['end_ms'] / 1000:.2f}",
            f"{st['unavailable_ms'] / 1000:.2f}",
            "n/a" if st["lost"] is None else str(st["lost"]),
        )
    return table


def _report_dir(args: argparse.Namespace, home: Path, what: str) -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(args.report or home / "reports" / args.name / f"{what}-{stamp}").absolute()


def run_clients(args: argparse.Namespace, out: Console, err: Console) -> int:
    """`lab clients`: the matrix, one line per cell as it goes, then the table and where it is."""
    from lab.clients import CLIENTS
    from lab.matrix import default_scenarios, markdown, run_matrix

    wanted = [c.strip() for c in args.clients.split(",")] if args.clients else None
    available = [c for c in CLIENTS if CLIENTS[c].missing() is None]
    clients = wanted or available
    for name in CLIENTS:
        if wanted is None and name not in available:
            err.print(f"lab clients: {name} skipped: {CLIENTS[name].missing()}", markup=False)
    scenarios = [s.strip() for s in args.scenarios.split(",")] if args.scenarios else default_scenarios()
    settings = [s.strip() for s in args.settings.split(",")]
    home = _running_lab(args, err)
    report_dir = _report_dir(args, home, "clients")
    with lab_lock(home, args.name, "clients"):
        spec = state.load(home, args.name)
        cells = run_matrix(spec, clients, scenarios, settings, report_dir, progress=lambda line: err.print(line))
    if args.json:
        print((report_dir / "matrix.json").read_text())
    else:
        out.print(markdown(cells), markup=False)
        out.print(f"matrix: {report_dir / 'matrix.html'} (matrix.md, matrix.json, one report per cell)", markup=False)
    return 0


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    if args.scenario not in SCENARIOS:
        raise LabError(f"unknown drill {args.scenario!r} (choose from: {', '.join(SCENARIOS)})")
    if args.clients < 1:
        raise LabError("--clients must be at least 1")
    conditions = parse_conditions(args.fail_on, list(Findings.summary_keys()))
    start, upgrade_to = _upgrade_path(args)
    home = _running_lab(args, err, start)
    report_dir = _report_dir(args, home, args.scenario)
    with lab_lock(home, args.name, f"drill {args.scenario}"):
        spec = state.load(home, args.name)
        _check_from(spec, start)
        result = run_drill(
            spec,
            args.scenario,
            duration=args.duration,
            clients=args.clients,
            workload=args.workload,
            report_dir=report_dir,
            upgrade_to=upgrade_to,
            rate=args.rate,
        )
    if args.json:
        print((report_dir / "report.json").read_text())
    else:
        out.print(summary_table(args.scenario, result.findings, result.seconds))
        if result.findings.steps:
            out.print(steps_table(result.findings))
        for note in result.findings.notes:
            out.print(f"note: {note}", markup=False)
        out.print(f"report: {report_dir / 'report.html'} (timeline.png, report.json, history.jsonl)", markup=False)
    failed = failing(result.findings.summary(), conditions)
    if failed:
        err.print(f"lab drill: findings over the gate: {'; '.join(failed)}", markup=False)
        return 1
    return 0
