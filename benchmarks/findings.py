"""The findings table of docs/findings.md, measured: every scenario drilled ``--runs`` times on one fresh
local lab, with the odds of each finding (k of N runs) and the spread of what varies.

    python -m benchmarks.findings --runs 3            # print the table
    python -m benchmarks.findings --runs 3 --write    # and put it into docs/findings.md (`make findings`)

A finding is data: a run that loses writes or sees two masters is counted, never an error. The lab runs
the system's server build (the one `lab up` picks) with the lab profile; the header of the table says
which, on what machine, when, and with which command.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
from pathlib import Path

import redis

from lab import control
from lab.drill.pages import machine
from lab.drill.repeat import Tally
from lab.drill.scenarios import LINK_AND_CLOCK_SCENARIOS, SCENARIOS, run_drill
from lab.servers import system

PAGE = Path(__file__).resolve().parent.parent / "docs" / "findings.md"
#: The page's two tables, each between its markers: node faults, and link faults (lab.links).
BLOCKS = ("findings", "findings-links")
#: Scenarios a plain local lab runs as they are (rolling-upgrade needs --to builds: docs/servers.md).
ALL = [name for name, s in SCENARIOS.items() if not s.open_ended]
DEFAULT = [name for name in ALL if name not in LINK_AND_CLOCK_SCENARIOS]
LINKS = [name for name in ALL if name in LINK_AND_CLOCK_SCENARIOS]


def drill_all(scenarios: list[str], runs: int, duration: float) -> tuple[list[Tally], dict[str, str]]:
    """The tallies of the scenarios the lab's build runs, and why each of the others was left out."""
    with tempfile.TemporaryDirectory(prefix="lab-findings-") as tmp:
        home = Path(tmp)
        spec = control.up("findings", "lab", "local", home).spec
        try:
            left_out = {
                name: why
                for name in scenarios
                if (requires := SCENARIOS[name].requires) is not None and (why := requires(spec))
            }
            tallies = [Tally(name) for name in scenarios if name not in left_out]
            for n in range(runs):
                for tally in tallies:
                    result = run_drill(spec, tally.scenario, duration=duration)
                    summary = result.findings.summary()
                    tally.runs.append(summary)
                    print(
                        f"findings: {tally.scenario} run {n + 1}/{runs}: lost {summary['lost']}, "
                        f"unavailable {summary['unavailable_ms'] / 1000:.2f} s, failovers {summary['failovers']}",
                        file=sys.stderr,
                    )
        finally:
            control.down(spec.name, home)
    return tallies, left_out


def header(runs: int, duration: float, scenarios: list[str], left_out: dict[str, str] | None = None) -> str:
    m = machine()
    build = system()
    names = " ".join(scenarios) if scenarios not in (DEFAULT, LINKS) else ""
    command = f"python -m benchmarks.findings --runs {runs} --duration {duration:g}" + (f" {names}" if names else "")
    return (
        f"Measured {datetime.date.today().isoformat()} with `{command} --write` (`make findings`): "
        f"{m['cpus']} CPUs, {m['memory_gib']} GiB, {m['kernel']}, Python {m['python']}, "
        f"{build.name if build else 'the system build'}, redis-py {redis.__version__}, local backend, lab profile, "
        f"one lab for every run, {duration:g} s workload of 4 redis-py workers per run, "
        f"load {m['load_1min']} at the end."
        + "".join(f" Not run: {name} ({why})." for name, why in (left_out or {}).items())
    )


def table(tallies: list[Tally]) -> str:
    rows = [
        "| scenario | runs with acknowledged writes lost | writes lost per run | longest unavailability, s "
        "| runs with two masters at once | runs with more than one failover | runs with failed writes applied anyway |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in tallies:
        more = sum(1 for r in t.runs if r["failovers"] > 1)
        rows.append(
            f"| {t.scenario} | {t.odds('lost')} | {t.spread('lost')} | {t.spread('unavailable_ms', 1000.0)} "
            f"| {t.odds('two_masters_ms')} | {more} of {len(t.runs)} | {t.odds('errored_but_applied')} |"
        )
    return "\n".join(rows)


def write(text: str, block: str = "findings", page: Path = PAGE) -> None:
    """Replace what stands between the page's markers of ``block`` (the prose around them is kept)."""
    start, end = f"<!-- {block}:start -->", f"<!-- {block}:end -->"
    doc = page.read_text()
    before, _, rest = doc.partition(start)
    _, found, after = rest.partition(end)
    if not found:
        raise SystemExit(f"findings: {page} has no {start} ... {end} markers")
    page.write_text(f"{before}{start}\n{text}\n{end}{after}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.findings", description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", help=f"default: {' '.join(ALL)}")
    parser.add_argument("--runs", type=int, default=3, help="runs of each scenario (default 3)")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds of workload per run (default 6)")
    parser.add_argument("--write", action="store_true", help=f"put the table into {PAGE.name}")
    args = parser.parse_args(argv)
    unknown = [s for s in args.scenarios if s not in ALL]
    if unknown or not 1 <= args.runs <= 100 or not 1 <= args.duration <= 120:
        parser.error(f"choose scenarios from {', '.join(ALL)}; --runs 1-100; --duration 1-120")
    chosen = args.scenarios or ALL
    for block, group in zip(BLOCKS, (DEFAULT, LINKS), strict=True):
        scenarios = [name for name in group if name in chosen]
        if not scenarios:
            continue
        tallies, left_out = drill_all(scenarios, args.runs, args.duration)
        text = f"{header(args.runs, args.duration, scenarios, left_out)}\n\n{table(tallies)}"
        print(text)
        if args.write:
            write(text, block)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
