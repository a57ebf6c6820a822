"""`lab sweep`: one link fault on the master over a grid of a Sentinel setting (``--set
down-after-milliseconds=500,1000,3000``) by the fault's strength (``--loss 5,20,40`` or ``--delay 300,1500``).

For each value of the setting (SENTINEL SET on every Sentinel, a recorded ``config`` fault: restored after
the row, by ``lab heal``, by an interrupt), the master is first killed (how long a real failover takes with
that value), then, for each strength, the master's links are degraded while it lives: every failover then
is a false one. Every run is a drill with its report; the grid goes to sweep.json, sweep.md and heatmap.png."""

from __future__ import annotations

import datetime
import json
import math
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from lab.drill.result import DrillResult
from lab.drill.scenarios import FAULT_AT, Scenario, degraded_master, run_drill
from lab.drill.steps import sentinel_set, wait_converged
from lab.errors import UsageError
from lab.links import Degradation
from lab.nodes import current_master
from lab.spec import LabSpec
from lab.topology import node_client

#: The Sentinel settings a sweep can vary, with the values SENTINEL SET is given (milliseconds).
SWEEPABLE = {"down-after-milliseconds": (100, 60_000), "failover-timeout": (1_000, 600_000)}
#: The fault's strengths: a loss in percent, or a delay in milliseconds (what the master sends).
STRENGTHS = {"loss": (0.1, 100.0), "delay": (1.0, 10_000.0)}
MAX_RUNS = 200  # a grid's drills in all (each ~15 s): past that it is a soak, not a sweep
WORKERS = 2  # the lab's own redis-py workers in each run
KILL_TAIL_S = 8.0  # after down-after, how long a kill run waits for the failover and the clients


@dataclass(frozen=True)
class Grid:
    setting: str
    values: tuple[int, ...]
    fault: str  # "loss" or "delay"
    strengths: tuple[float, ...]
    span: float  # seconds the link stays degraded in a cell's run
    repeat: int

    @property
    def runs(self) -> int:
        return len(self.values) * (1 + len(self.strengths)) * self.repeat

    def label(self, strength: float) -> str:
        return f"{strength:g}% loss" if self.fault == "loss" else f"{strength:g} ms delay"


def parse_setting(text: str) -> tuple[str, tuple[int, ...]]:
    """``NAME=V1,V2,...``: a sweepable Sentinel setting and its values, distinct, in range."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or name not in SWEEPABLE:
        raise UsageError(f"--set {text!r}: NAME=V1,V2,... with NAME one of: {', '.join(SWEEPABLE)}")
    low, high = SWEEPABLE[name]
    parts = _parts(raw, f"--set {name}")
    values: list[int] = []
    for part in parts:
        # (ASCII digits only: a superscript two is a digit to Python and no number to int(), and full-width
        # digits are numbers to both)
        if not (part.isascii() and part.isdecimal() and len(part) <= 6) or not low <= int(part) <= high:
            raise UsageError(f"--set {name}: {part!r} is not a whole number of milliseconds from {low} to {high}")
        if int(part) in values:
            raise UsageError(f"--set {name}: {part} is named twice")
        values.append(int(part))
    return name, tuple(values)


def _parts(raw: str, option: str) -> list[str]:
    """A comma list's items, at most MAX_RUNS of them (counted before any is read)."""
    if raw.count(",") >= MAX_RUNS:
        raise UsageError(f"{option}: more than {MAX_RUNS} values")
    return [part.strip() for part in raw.split(",")]


def parse_strengths(text: str, fault: str) -> tuple[float, ...]:
    low, high = STRENGTHS[fault]
    unit = "percent" if fault == "loss" else "milliseconds"
    found: dict[str, float] = {}  # by how the cell is named (10.0000001 and 10.0000002 are both 'loss-10')
    for part in _parts(text, f"--{fault}"):
        try:
            value = float(part)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or not low <= value <= high:
            raise UsageError(f"--{fault}: {part!r} is not {unit} from {low:g} to {high:g}")
        if f"{value:g}" in found:
            raise UsageError(f"--{fault}: {value:g} is named twice")
        found[f"{value:g}"] = value
    return tuple(found.values())


def parse_grid(setting: str, loss: str | None, delay: str | None, span: float, repeat: int) -> Grid:
    """The whole grid from the command's options; every mistake is a UsageError before a lab is touched."""
    if (loss is None) == (delay is None):
        raise UsageError("name the fault's strengths: --loss P[,P...] or --delay MS[,MS...] (one of them)")
    fault = "loss" if loss is not None else "delay"
    name, values = parse_setting(setting)
    grid = Grid(name, values, fault, parse_strengths(loss or delay or "", fault), span, repeat)
    if grid.runs > MAX_RUNS:
        raise UsageError(f"the grid is {grid.runs} drills (at most {MAX_RUNS}): fewer values or a smaller --repeat")
    return grid


@dataclass
class Runs:
    """A row's kill runs, or a cell's runs: what each measured, added up."""

    value: int = 0  # the setting's value (the row)
    runs: int = 0
    failovers: int = 0  # in all runs
    with_failover: int = 0  # runs with at least one failover
    with_second_failover: int = 0  # runs with more than one (a new master failed over too: redis/redis#8607)
    unavailable_s: list[float] = field(default_factory=list)  # each run's longest
    lost: int = 0  # in all runs
    reports: list[str] = field(default_factory=list)

    def add(self, result: DrillResult) -> None:
        count = len(result.findings.failovers)
        self.runs += 1
        self.failovers += count
        self.with_failover += count > 0
        self.with_second_failover += count > 1
        self.unavailable_s.append(round(result.findings.unavailable_longest_ms / 1000, 3))
        self.lost += result.findings.lost
        self.reports.append(str(result.report_dir))


@dataclass
class KillRow(Runs):
    """One setting value's runs of a killed master: how long the real failover took."""

    failover_s: list[float] = field(default_factory=list)  # the kill taking effect to the first +switch-master


@dataclass
class Cell(Runs):
    """One setting value by one strength: the master lived throughout, so every failover is a false one."""

    strength: float = 0.0


@dataclass
class Sweep:
    grid: Grid
    kills: list[KillRow] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)


def time_to_failover(result: DrillResult) -> float | None:
    """Seconds from the kill taking effect to the first failover after it; None when none came."""
    records = result.recorder.history.records
    killed = next((r["t"] for r in records if r["type"] == "fault" and r["action"] == "applied"), None)
    after = [f["t"] for f in result.findings.failovers if killed is not None and f["t"] >= killed]
    return None if killed is None or not after else round((min(after) - killed) / 1000, 3)


def run_sweep(spec: LabSpec, grid: Grid, report_dir: Path, progress: Callable[[str], None]) -> Sweep:
    """Every row (a setting value) in turn, under SENTINEL SET; each run a drill with its report."""
    sweep = Sweep(grid)
    done = 0

    def drill(row_spec: LabSpec, scenario: str | Scenario, duration: float, where: Path) -> DrillResult:
        nonlocal done
        wait_converged(row_spec, timeout=60)  # (a false failover of the last run may still be settling)
        result = run_drill(row_spec, scenario, duration=duration, clients=WORKERS, report_dir=where)
        done += 1
        drop_keys(spec, result.recorder.workload.prefix)
        return result

    for value in grid.values:
        row_spec = replace(spec, down_after_ms=value) if grid.setting == "down-after-milliseconds" else spec
        row = KillRow(value)
        with sentinel_set(spec, **{grid.setting: value}):
            kill_for = FAULT_AT + row_spec.down_after_ms / 1000 + KILL_TAIL_S
            for k in range(1, grid.repeat + 1):
                result = drill(row_spec, "kill-master", kill_for, report_dir / f"{value}" / "kill" / f"run-{k}")
                took = time_to_failover(result)
                row.add(result)
                row.failover_s += [] if took is None else [took]
                progress(
                    f"[{done}/{grid.runs}] {grid.setting} {value}: kill-master run {k}: {_killed(took)}, "
                    f"{len(result.findings.failovers)} failover(s), lost {result.findings.lost}"
                )
            sweep.kills.append(row)
            for strength in grid.strengths:
                cell = Cell(value, strength=strength)
                degradation = Degradation(loss=strength) if grid.fault == "loss" else Degradation(delay_ms=strength)
                scenario = degraded_master(degradation, grid.span)
                for k in range(1, grid.repeat + 1):
                    where = report_dir / f"{value}" / f"{grid.fault}-{strength:g}" / f"run-{k}"
                    result = drill(row_spec, scenario, FAULT_AT + grid.span, where)
                    cell.add(result)
                    progress(
                        f"[{done}/{grid.runs}] {grid.setting} {value}, {grid.label(strength)}: run {k}: "
                        f"{len(result.findings.failovers)} false failover(s), unavailable "
                        f"{cell.unavailable_s[-1]:.2f}s, lost {result.findings.lost}"
                    )
                sweep.cells.append(cell)
    return sweep


def drop_keys(spec: LabSpec, prefix: str) -> int:
    """Delete a checked run's keys: every run starts on the data set the sweep found (48 runs left 1.26 million
    keys behind, and the later rows' full resyncs, forked over them, were timed instead of their settings)."""
    dropped = 0
    with node_client(spec, current_master(spec), timeout=10) as conn:
        batch: list[bytes] = []
        for key in conn.scan_iter(match=f"{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) == 1000:
                dropped += conn.unlink(*batch)
                batch.clear()
        if batch:
            dropped += conn.unlink(*batch)
    return dropped


def _killed(took: float | None) -> str:
    return "no failover" if took is None else f"failed over in {took:.2f}s"


def _spread(values: list[float]) -> str:
    """median (min-max) in seconds; '-' when there are none."""
    if not values:
        return "-"
    low, mid, high = min(values), statistics.median(values), max(values)
    return f"{mid:.2f}" if f"{low:.2f}" == f"{high:.2f}" else f"{mid:.2f} ({low:.2f}-{high:.2f})"


def cell_text(cell: Cell) -> str:
    return (
        f"false failovers {cell.with_failover} of {cell.runs}"
        + (f" ({cell.failovers} in all)" if cell.failovers > cell.with_failover else "")
        + f"; unavailable {_spread(cell.unavailable_s)} s; lost {cell.lost:,}"
    )


def kill_text(row: KillRow) -> str:
    missed = row.runs - row.with_failover
    missed_text = f"; no failover in {missed} of {row.runs}" if missed else ""
    again = f"; a second failover in {row.with_second_failover} of {row.runs}" if row.with_second_failover else ""
    return f"{_spread(row.failover_s)} s{missed_text}{again}; lost {row.lost:,}"


def markdown(sweep: Sweep) -> str:
    """The grid as a table: a row per setting value, the kill column, a column per strength."""
    grid = sweep.grid
    head = [grid.setting, "master killed: fails over in (s)", *(grid.label(s) for s in grid.strengths)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in sweep.kills:
        cells = [c for c in sweep.cells if c.value == row.value]
        lines.append("| " + " | ".join([f"{row.value:,}", kill_text(row), *map(cell_text, cells)]) + " |")
    return "\n".join(lines)


def heatmap(sweep: Sweep, path: Path) -> None:
    """heatmap.png: the share of runs with a false failover per cell (white none, red every run), each cell
    annotated with its figures; each row names how long a real failover took with its value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = sweep.grid
    shares = [[c.with_failover / c.runs for c in sweep.cells if c.value == value] for value in grid.values]
    width = max(6.5, 2.6 + 2.3 * len(grid.strengths))
    fig, ax = plt.subplots(figsize=(width, 1.0 + 1.05 * len(grid.values)), dpi=110)
    image = ax.imshow(shares, cmap="Reds", vmin=0.0, vmax=1.0, aspect="auto")
    for i, value in enumerate(grid.values):
        for j, cell in enumerate(c for c in sweep.cells if c.value == value):
            text = (
                f"{cell.with_failover} of {cell.runs} false\nat worst {max(cell.unavailable_s):.1f} s unavailable\n"
                f"lost {cell.lost:,}"
            )
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if shares[i][j] > 0.6 else "black")
    ax.set_xticks(range(len(grid.strengths)), [grid.label(s) for s in grid.strengths])
    ax.set_yticks(
        range(len(grid.values)),
        [f"{row.value:,} ms\nkill: {_spread(row.failover_s)} s" for row in sweep.kills],
        fontsize=8,
    )
    ax.set_ylabel(grid.setting)
    ax.set_title(
        f"false failovers of a live master\n{grid.span:g} s of degraded links, {grid.repeat} run(s) a cell", fontsize=10
    )
    fig.colorbar(image, ax=ax, label="share of runs with a false failover", fraction=0.05)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_sweep(sweep: Sweep, directory: Path, about: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    doc = {
        "schema_version": 1,
        "generated_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **about,
        "workers": WORKERS,
        "grid": asdict(sweep.grid),
        "kills": [asdict(r) for r in sweep.kills],
        "cells": [asdict(c) for c in sweep.cells],
    }
    (directory / "sweep.json").write_text(json.dumps(doc, indent=2))
    (directory / "sweep.md").write_text(markdown(sweep) + "\n")
    heatmap(sweep, directory / "heatmap.png")
