"""`lab drill`: bring the lab up if needed, run the scenario under the lab's lock, print the summary,
and gate on findings (`--fail-on lost>0`): a drill that ran exits 0 unless a gate says otherwise."""

from __future__ import annotations

import argparse
import datetime
import itertools
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from lab import control, interrupts, servers, state
from lab.drill import gates, junit
from lab.drill.checker import Findings
from lab.drill.repeat import Tally, odds_text, repeat_drill
from lab.drill.result import DrillResult
from lab.drill.scenarios import SCENARIOS, run_drill
from lab.errors import LabError, UsageError
from lab.lock import lab_lock
from lab.spec import LabSpec


def summary_table(scenario: str, findings: Findings, seconds: float) -> Table:
    from lab.drill.story import summary_rows  # (the labels and units report.html uses too)

    table = Table(title=f"drill {scenario}: {seconds:.1f} s, {findings.workload} workload")
    table.add_column("finding")
    table.add_column("value", justify="right")
    for name, value in summary_rows(findings.as_dict()):
        table.add_row(name, value)
    return table


def _running_lab(args: argparse.Namespace, err: Console, server: list[str] | None = None) -> tuple[Path, bool]:
    """The lab's home, after starting the lab (on ``server``) when it does not run yet, and whether it was
    started. An interrupt while it starts removes it again (lab.control); one after leaves it running, and
    says so."""
    home: Path = args.home or state.default_home()
    if state.exists(home, args.name):
        return home, False
    interrupts.new_lab(home, args.name)
    started = control.up(args.name, args.profile, args.backend, home, server=server or ())
    err.print(f"lab {args.name} is healthy after {started.seconds:.2f}s (started for this command)", markup=False)
    return home, True


def _left_running(command: str, name: str, err: Console) -> None:
    """A command that had to start the lab leaves it running for the next one, and says how to stop it."""
    err.print(
        f"{command}: lab {name} was started for this command and is still running: "
        f"`lab down --name {name}` stops it and deletes its data",
        markup=False,
    )


def _build(name: str, option: str) -> servers.Server:
    try:
        return servers.resolve(name)
    except LabError as exc:
        raise UsageError(f"{option} {name}: {exc}") from None


def _upgrade_path(args: argparse.Namespace, home: Path) -> tuple[list[str], list[servers.Server]]:
    """rolling-upgrade's --from (as ``--server`` values) and --to builds; checked before anything starts:
    each move must change the build (an upgrade to the build a node runs is refused halfway through)."""
    if args.scenario != "rolling-upgrade":
        if args.upgrade_from or args.upgrade_to:
            raise UsageError("--from and --to belong to the rolling-upgrade drill")
        return [], []
    if not args.upgrade_to:
        raise UsageError("rolling-upgrade needs --to BUILD[,BUILD...] (see `lab servers`)")
    targets = [_build(name.strip(), "--to") for name in args.upgrade_to.split(",") if name.strip()]
    if not targets:
        raise UsageError("rolling-upgrade needs --to BUILD[,BUILD...] (see `lab servers`)")
    from lab.upgrade import unreadable_after  # the rule lab.upgrade applies to the data on disk, by build

    first = _build(args.upgrade_from, "--from") if args.upgrade_from else None
    if first is None and state.exists(home, args.name):
        spec = state.load(home, args.name)
        for node in spec.nodes:
            build = spec.server(node) or servers.system()
            if build == targets[0]:
                raise UsageError(f"lab {args.name}'s {node.name} runs {targets[0].name} already: nothing to upgrade")
            if node.kind == "redis" and (why := unreadable_after(build, targets[0])):
                raise UsageError(f"--to {targets[0].name}: lab {args.name}'s {node.name} cannot move there: {why}")
    chain = [first or (None if state.exists(home, args.name) else servers.system()), *targets]
    for before, after in itertools.pairwise(chain):
        if before is not None and before == after:
            raise UsageError(f"--to {after.name} after {before.name} is no upgrade: the same build")
        # (lab.upgrade would refuse it halfway through, on the data it finds)
        if before is not None and after is not None and (why := unreadable_after(before, after)):
            raise UsageError(f"--to {after.name} after {before.name} is a downgrade the data cannot take: {why}")
    return [args.upgrade_from] if args.upgrade_from else [], targets


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


def _check_needs(args: argparse.Namespace, home: Path, scenario: str) -> None:
    """A scenario the lab cannot run (isolation without root and iptables, or on builds that cannot
    bind their own source address) is refused before a lab is started for it."""
    from lab import faults
    from lab.backends import BACKENDS, get_backend

    needs = SCENARIOS[scenario].needs
    if not needs:
        return
    if state.exists(home, args.name):
        spec = state.load(home, args.name)
        if why := faults.unsupported_by_builds(spec, needs):
            raise LabError(f"drill {scenario} needs {needs}: {why}")
        backend = get_backend(spec.backend)
    elif args.backend in ("auto", *BACKENDS):
        backend = get_backend(args.backend)
    else:
        return  # (lab up refuses the name)
    if why := backend.unsupported(needs):
        raise LabError(f"drill {scenario} needs {needs}, which the {backend.name} backend cannot do here: {why}")


def _report_dir(args: argparse.Namespace, home: Path, what: str) -> Path:
    """The report directory, checked before the drill starts (lab.drill.report.check_destination)."""
    from lab.drill.report import check_destination

    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    where = Path(args.report or home / "reports" / args.name / f"{what}-{stamp}")
    return check_destination(where, home=home, lab=args.name)


def _unfinished(report_dir: Path) -> str:
    """An interrupt removes the report directory the command has not finished (lab.drill.report)."""
    from lab.drill.report import remove_if_unfinished

    return remove_if_unfinished(report_dir)


def _names(text: str | None, default: list[str]) -> list[str]:
    """A comma list option: None (left out) is ``default``; an empty one names nothing (refused)."""
    return default if text is None else [name.strip() for name in text.split(",") if name.strip()]


def run_clients(args: argparse.Namespace, out: Console, err: Console) -> int:
    """`lab clients`: the matrix, one line per cell as it goes, then the table and where it is."""
    from lab.drill.clients import CLIENTS
    from lab.drill.fanout import check_helpers, run_parallel
    from lab.drill.matrix import check_matrix, default_scenarios, markdown, run_matrix

    available = [c for c in CLIENTS if CLIENTS[c].missing() is None]
    clients = _names(args.clients, available)
    scenarios = _names(args.scenarios, default_scenarios())
    settings = _names(args.settings, [])
    check_matrix(clients, scenarios, settings)
    check_helpers(args.home or state.default_home(), args.name, args.parallel)  # (names, and labs in the way)
    for scenario in list(scenarios):  # (an isolate scenario half-way through a 14 min matrix would end it)
        try:
            _check_needs(args, args.home or state.default_home(), scenario)
        except LabError as exc:
            if args.scenarios is not None:  # asked for by name: refused; by default: skipped, and said so
                raise
            err.print(f"lab clients: {scenario} skipped: {exc}", markup=False)
            scenarios.remove(scenario)
    report_dir = _report_dir(args, args.home or state.default_home(), "clients")
    if args.clients is None:
        for name in CLIENTS:
            if name not in available:
                err.print(f"lab clients: {name} skipped: {CLIENTS[name].missing()}", markup=False)
    home, started = _running_lab(args, err)
    unfinished = _unfinished(report_dir)

    def progress(line: str) -> None:
        err.print(line, markup=False)

    if args.parallel > 1:
        spec = state.load(home, args.name)
        cells = run_parallel(
            spec, home, clients, scenarios, settings, report_dir, args.parallel, progress, repeat=args.repeat
        )
    else:
        with lab_lock(home, args.name, "clients"):
            spec = state.load(home, args.name)
            cells = run_matrix(spec, clients, scenarios, settings, report_dir, progress=progress, repeat=args.repeat)
    interrupts.done(unfinished)
    where = f"matrix: {report_dir / 'matrix.html'} (matrix.md, matrix.json, one report per cell)"
    return _told("lab clients", args, (out, err), (report_dir / "matrix.json", markdown(cells), where), started)


def _told(
    command: str,
    args: argparse.Namespace,
    consoles: tuple[Console, Console],
    what: tuple[Path, str, str],
    started: bool,
) -> int:
    """A command's result: its JSON file (``--json``), else its table and where the rest is; then the note
    on a lab started for it."""
    (out, err), (json_file, table, where) = consoles, what
    if args.json:
        print(json_file.read_text())
    else:
        out.print(table, markup=False)
        out.print(where, markup=False)
    if started:
        _left_running(command, args.name, err)
    return 0


def run_sweep_command(args: argparse.Namespace, out: Console, err: Console) -> int:
    """`lab sweep`: a line per run as it goes, then the grid's table and where its picture is."""
    from lab.drill.matrix import run_about
    from lab.drill.sweep import markdown, parse_grid, run_sweep, write_sweep

    grid = parse_grid(args.setting, args.loss, args.delay, args.span, args.repeat)
    home: Path = args.home or state.default_home()
    _check_needs(args, home, "lossy-master")  # (what every cell injects: a degraded link)
    report_dir = _report_dir(args, home, "sweep")
    home, started = _running_lab(args, err)
    unfinished = _unfinished(report_dir)
    began = time.perf_counter()
    with lab_lock(home, args.name, "sweep"):
        spec = state.load(home, args.name)
        err.print(f"lab sweep: {grid.runs} drills; reports in {report_dir}", markup=False)
        sweep = run_sweep(spec, grid, report_dir, lambda line: err.print(line, markup=False))
        write_sweep(sweep, report_dir, run_about(spec, began))
    interrupts.done(unfinished)
    where = f"sweep: {report_dir / 'heatmap.png'} (sweep.md, sweep.json, one report per run)"
    return _told("lab sweep", args, (out, err), (report_dir / "sweep.json", markdown(sweep), where), started)


def run(args: argparse.Namespace, out: Console, err: Console) -> int:
    # Every option is checked before a lab is started or touched (bad usage: exit 2).
    if args.scenario == "soak":
        return run_soak_command(args, out, err)
    if args.scenario not in SCENARIOS:
        raise UsageError(f"unknown drill {args.scenario!r} (choose from: {', '.join(SCENARIOS)}, soak)")
    soak_only = [o for o, v in (("--faults", args.faults), ("--interval", args.interval), ("--seed", args.seed)) if v]
    if soak_only or args.plan:
        raise UsageError(f"{', '.join(soak_only) or '--plan'}: only `lab drill soak` takes it")
    if args.duration is None:
        args.duration = 10.0  # (lab.cli refused one longer than a drill may run)
    args.workload = args.workload or "set"
    conditions = gates.parse(args.fail_on, list(Findings.summary_keys()))
    home: Path = args.home or state.default_home()
    start, upgrade_to = _upgrade_path(args, home)
    _check_needs(args, home, args.scenario)
    report_dir = _report_dir(args, home, args.scenario)
    junit_file = junit.check_destination(args.junit, home, args.name) if args.junit is not None else None
    home, started = _running_lab(args, err, start)
    unfinished = _unfinished(report_dir)
    with lab_lock(home, args.name, f"drill {args.scenario}"):
        spec = state.load(home, args.name)
        _check_from(spec, start)

        def drill_once(directory: Path) -> DrillResult:
            result = run_drill(
                spec,
                args.scenario,
                duration=args.duration,
                clients=args.clients,
                workload=args.workload,
                report_dir=directory,
                upgrade_to=upgrade_to,
                rate=args.rate,
            )
            if args.export:
                from lab.drill.export import write_export

                write_export(result.recorder.history.records, result.findings.workload, directory)
            return result

        if args.repeat > 1:
            tally, results = repeat_drill(spec, drill_once, args.repeat, report_dir, lambda line: err.print(line))
        else:
            results = [drill_once(report_dir)]
    interrupts.done(unfinished)
    if args.repeat > 1:
        return _repeated(args, out, err, tally, results, report_dir, conditions, junit_file, started)
    result = results[0]
    if args.json:
        print((report_dir / "report.json").read_text())
    else:
        out.print(summary_table(args.scenario, result.findings, result.seconds))
        if result.findings.steps:
            out.print(steps_table(result.findings))
        for note in result.findings.notes:
            out.print(f"note: {note}", markup=False)
        also = ", history.edn, history.jepsen.json" if args.export else ""
        out.print(
            f"report: {report_dir / 'report.html'} (timeline.png, report.json, history.jsonl{also})", markup=False
        )
    summary = result.findings.summary()
    return _finish(
        "lab drill", args, err, [summary], conditions, (junit_file, args.scenario, result.seconds, report_dir), started
    )


def _repeated(
    args: argparse.Namespace,
    out: Console,
    err: Console,
    tally: Tally,
    results: list[DrillResult],
    report_dir: Path,
    conditions: list[gates.Gate],
    junit_file: Path | None,
    started: bool,
) -> int:
    """``--repeat N``: each figure's odds (in how many runs it was above zero) and spread, repeat.json,
    and each run's report under run-K/."""
    import json

    doc = tally.as_dict()
    (report_dir / "repeat.json").write_text(json.dumps(doc, indent=2))
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        n = len(tally.runs)
        table = Table(title=f"drill {args.scenario}, {n} runs: in how many runs, and median (min-max)")
        for column in ("finding", "runs", "median (min-max)"):
            table.add_column(column, justify="left" if column == "finding" else "right")
        for key in REPEATED:
            scale = 1000.0 if key.endswith("_ms") else 1.0
            label = key.removesuffix("_ms") + (" (s)" if scale != 1.0 else "")
            table.add_row(label, odds_text(tally.count(key), n), tally.spread(key, scale))
        out.print(table)
        out.print(f"reports: {report_dir}/run-1 ... run-{n} (repeat.json: every run's figures)", markup=False)
    seconds = sum(r.seconds for r in results)
    summaries = [r.findings.summary() for r in results]
    return _finish(
        "lab drill", args, err, summaries, conditions, (junit_file, args.scenario, seconds, report_dir), started
    )


#: The figures `lab drill --repeat` tabulates (repeat.json holds them all).
REPEATED = (
    "lost",
    "stale_reads",
    "anomalies",
    "errored_but_applied",
    "duplicated",
    "two_masters_ms",
    "split_brain_ms",
    "unavailable_ms",
    "failovers",
)


def _finish(
    command: str,
    args: argparse.Namespace,
    err: Console,
    summaries: list[dict[str, Any]],
    conditions: list[gates.Gate],
    junit_of: tuple[Path | None, str, float, Path],
    started: bool,
) -> int:
    """The JUnit file, the note on a lab started for the command, and the gates: exit 1 if one holds
    (in any run, with ``--repeat``: the JUnit file then holds the run where the most did)."""
    junit_file, scenario, seconds, report_dir = junit_of
    worst = max(summaries, key=lambda s: len(gates.failing(s, conditions)))
    if junit_file is not None:
        junit.write(junit_file, junit.document(scenario, worst, conditions, seconds, report_dir))
    if started:
        _left_running(command, args.name, err)
    failed = []
    for gate in conditions:
        held = [s for s in summaries if gate.holds(s)]
        if held:
            runs = f" (in {len(held)} of {len(summaries)} runs)" if len(summaries) > 1 else ""
            failed.append(gate.worded(held[0]) + runs)
    if failed:
        err.print(f"{command}: findings over the gate: {'; '.join(failed)}", markup=False)
        return 1
    return 0


def _soak_options(args: argparse.Namespace) -> tuple[tuple[str, ...], tuple[float, float], int, float, str]:
    """The soak's faults, interval, seed, duration and workload; bad ones are usage errors (exit 2)."""
    import secrets

    from lab.drill import nemesis
    from lab.drill.soak import SOAK_WORKLOADS

    if args.upgrade_from or args.upgrade_to:
        raise UsageError("--from and --to belong to the rolling-upgrade drill")
    if args.repeat > 1:
        raise UsageError("--repeat: a soak is its own repetition (replay one with --seed)")
    if args.export:
        raise UsageError("--export: a soak's history is history.jsonl.gz (zcat it); export a drill's")
    chosen = nemesis.parse_faults(args.faults) if args.faults is not None else nemesis.DEFAULT_FAULTS
    interval = nemesis.parse_interval(args.interval) if args.interval is not None else nemesis.DEFAULT_INTERVAL
    seed = nemesis.parse_seed(args.seed) if args.seed is not None else secrets.randbelow(2**31)
    duration = 600.0 if args.duration is None else args.duration
    if duration < interval[0]:
        raise UsageError(f"--duration {duration:g}: shorter than the quiet interval before the first fault")
    workload = args.workload or "counter"
    if workload not in SOAK_WORKLOADS:
        raise UsageError(f"--workload {workload}: a soak runs {' or '.join(SOAK_WORKLOADS)} (bounded memory)")
    return chosen, interval, seed, duration, workload


def run_soak_command(args: argparse.Namespace, out: Console, err: Console) -> int:
    """`lab drill soak`: the schedule (``--plan``), or the soak and its report."""
    from lab.drill import nemesis
    from lab.drill.soak import check_faults, run_soak
    from lab.drill.soakcheck import SoakFindings

    chosen, interval, seed, duration, workload = _soak_options(args)
    if args.plan:
        steps = nemesis.plan(seed, chosen, interval, duration)
        out.print(f"soak seed {seed}: at most {len(steps)} faults in {duration:g} s", markup=False)
        for step in steps:
            out.print(f"  {step.index:>4}  quiet {step.quiet_s:7.3f} s, then {step.fault}", markup=False)
        return 0
    conditions = gates.parse(args.fail_on, list(SoakFindings().summary()))
    home: Path = args.home or state.default_home()
    for name in chosen:
        _check_needs(args, home, name)
    report_dir = _report_dir(args, home, f"soak-{seed}")
    junit_file = junit.check_destination(args.junit, home, args.name) if args.junit is not None else None
    home, started = _running_lab(args, err)
    with lab_lock(home, args.name, "drill soak"):
        spec = state.load(home, args.name)
        check_faults(spec, chosen)
        err.print(f"soak seed {seed}: {duration:g} s, faults {', '.join(chosen)}; report {report_dir}", markup=False)
        result = run_soak(
            spec,
            seed=seed,
            chosen=chosen,
            interval=interval,
            duration=duration,
            report_dir=report_dir,
            clients=args.clients,
            workload=workload,
            rate=args.rate,
            progress=lambda line: err.print(line, markup=False),
        )
    summary = result.findings.summary()
    if args.json:
        print((report_dir / "soak.json").read_text())
    else:
        table = Table(title=f"soak seed {seed}: {result.seconds:.1f} s, {workload} workload")
        table.add_column("finding")
        table.add_column("value", justify="right")
        for key, value in summary.items():
            table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
        out.print(table)
        if result.findings.stopped:
            out.print(f"stopped early: {result.findings.stopped}", markup=False)
        if result.linearizable is not None:
            out.print(f"linearizable: {result.linearizable['valid']}", markup=False)
        out.print(f"report: {report_dir / 'soak.html'} (soak.png, soak.json, history.jsonl.gz)", markup=False)
    return _finish(
        "lab drill soak", args, err, [summary], conditions, (junit_file, "soak", result.seconds, report_dir), started
    )
