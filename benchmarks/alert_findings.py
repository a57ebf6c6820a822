"""The alerts table of docs/monitoring.md, measured: each scenario with alert expectations drilled ``--runs``
times on one fresh local lab with monitoring (`lab up --monitoring`), and for every rule, the shipped ones and
the community's, in how many runs it fired after the fault, how long after, and whether it reached a receiver.

    python -m benchmarks.alert_findings --runs 3            # print the table
    python -m benchmarks.alert_findings --runs 3 --write    # and put it into docs/monitoring.md

A rule firing where it must stay quiet is data (a false page), counted, never an error.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from benchmarks.findings import header as drill_header
from benchmarks.findings import write
from lab import control
from lab.drill.alerting import EXPECTED, RULE_TEST, alert_rows, first_fault_ms
from lab.drill.history import Record
from lab.drill.scenarios import run_drill
from lab.monitoring import ruletest

PAGE = Path(__file__).resolve().parent.parent / "docs" / "monitoring.md"
SCENARIOS = sorted(EXPECTED)
#: The metric names a lab's exporters gave Prometheus, beside the fixtures.
METRIC_NAMES = "metric-names.txt"


class Tally:
    """One scenario's runs: per (rule, source), the seconds from the fault to firing in each run it fired,
    and the runs in which a notification of it reached a receiver."""

    def __init__(self, scenario: str) -> None:
        self.scenario = scenario
        self.runs = 0
        self.after: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.notified: dict[tuple[str, str], int] = defaultdict(int)

    def add(self, records: list[Record]) -> None:
        self.runs += 1
        fault = first_fault_ms(records)
        if fault is None:
            return
        for row in alert_rows(records):
            firing = [
                float(r["t"]) for r in records
                if r["type"] == "alert" and r["alert"] == row.alert and r["source"] == row.source
                and r["state"] == "firing" and float(r["t"]) >= fault
            ]  # fmt: skip
            if firing:
                self.after[(row.alert, row.source)].append((min(firing) - fault) / 1000)
                if row.notified:
                    self.notified[(row.alert, row.source)] += 1


def meaning(scenario: str, rule: str, source: str) -> str:
    must, quiet = EXPECTED[scenario]
    if source != "redis-ha-lab":
        return "false page" if scenario == "failover" else "pages (critical)"
    return "must fire" if rule in must else ("**false: must stay quiet**" if rule in quiet else "")


def table(tallies: list[Tally]) -> str:
    rows = [
        "| scenario | rule | source | fired (runs) | after the fault, s (median, range) | notified (runs) | meaning |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in tallies:
        must = EXPECTED[t.scenario][0]
        keys = sorted(t.after, key=lambda k: (k[1] != "redis-ha-lab", statistics.median(t.after[k])))
        missed = [m for m in sorted(must) if (m, "redis-ha-lab") not in t.after]
        for rule, source in keys:
            after = t.after[(rule, source)]
            spread = f"{statistics.median(after):.1f} ({min(after):.1f}-{max(after):.1f})"
            rows.append(
                f"| {t.scenario} | {rule} | {source} | {len(after)} of {t.runs} | {spread} "
                f"| {t.notified[(rule, source)]} of {t.runs} | {meaning(t.scenario, rule, source)} |"
            )
        rows += [
            f"| {t.scenario} | {m} | redis-ha-lab | 0 of {t.runs} | - | - | **missed: must fire** |" for m in missed
        ]
    return "\n".join(rows)


def drill_all(scenarios: list[str], runs: int, duration: float, fixtures: Path | None = None) -> list[Tally]:
    """``fixtures``: also keep each scenario's first run there as a promtool fixture, ``<scenario>.test.yml``."""
    tallies = [Tally(name) for name in scenarios]
    with tempfile.TemporaryDirectory(prefix="lab-alerts-") as tmp:
        home = Path(tmp)
        spec = control.up("alerts", "lab", "local", home, monitoring=True).spec
        try:
            if fixtures is not None:  # what a dashboard may name (tests/unit/test_dashboard.py)
                fixtures.mkdir(parents=True, exist_ok=True)
                (fixtures / METRIC_NAMES).write_text("\n".join(ruletest.metric_names(spec)) + "\n")
            for n in range(runs):
                for tally in tallies:
                    report = home / "reports" / f"{tally.scenario}-{n}" if fixtures is not None and n == 0 else None
                    result = run_drill(spec, tally.scenario, duration=duration, report_dir=report)
                    tally.add(result.recorder.history.records)
                    if report is not None and fixtures is not None:
                        fixtures.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(report / RULE_TEST, fixtures / f"{tally.scenario}.test.yml")
                    print(f"alert_findings: {tally.scenario} run {n + 1}/{runs}", file=sys.stderr)
        finally:
            control.down(spec.name, home)
    return tallies


def versions() -> str:
    """The monitoring builds that ran, as each says (``prometheus --version``: "prometheus, version 2.42.0+ds ...")."""
    said = []
    for name, binary in (("Prometheus", "prometheus"), ("Alertmanager", "prometheus-alertmanager"),
                         ("redis_exporter", "prometheus-redis-exporter")):  # fmt: skip
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
        found = re.search(r"(?:version |Exporter )v?(\d+\.\d+\.\d+)", out.stdout + out.stderr)
        said.append(f"{name} {found[1] if found else '?'}")
    return ", ".join(said)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.alert_findings", description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", help=f"default: {' '.join(SCENARIOS)}")
    parser.add_argument("--runs", type=int, default=3, help="runs of each scenario (default 3)")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of workload per run (default 8)")
    parser.add_argument("--write", action="store_true", help=f"put the table into {PAGE.name}")
    parser.add_argument("--fixtures", type=Path, help="keep each scenario's first run as a promtool fixture here")
    args = parser.parse_args(argv)
    if [s for s in args.scenarios if s not in SCENARIOS] or not 1 <= args.runs <= 100:
        parser.error(f"choose scenarios from {', '.join(SCENARIOS)}; --runs 1-100")
    chosen = args.scenarios or SCENARIOS
    tallies = drill_all(chosen, args.runs, args.duration, args.fixtures)
    said = (
        drill_header(args.runs, args.duration, chosen)
        .replace(
            f"`python -m benchmarks.findings --runs {args.runs} --duration {args.duration:g}",
            f"`python -m benchmarks.alert_findings --runs {args.runs} --duration {args.duration:g}",
        )
        .replace(" (`make findings`)", " (`make alert-findings`)")
    )
    text = f"{said} Monitoring: {versions()}, lab profile timers (scrape and evaluation every 1 s).\n\n{table(tallies)}"
    print(text)
    if args.write:
        write(text, "alerts", PAGE)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
