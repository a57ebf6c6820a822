"""``lab repro``: the catalogue (--list), and its reproducers run on fresh labs, a verdict per build."""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # (`lab --help` builds this parser: the catalogue loads when the command runs)
    from rich.console import Console

    from lab.repro.run import Outcome


def add_commands(sub: Any) -> None:
    p = sub.add_parser("repro", help="reproducers of real, public Sentinel failures: a verdict per build")
    p.add_argument("reproducer", nargs="*", help="reproducer name(s) (see --list)")
    p.add_argument("--list", action="store_true", help="the catalogue: name, upstream reference, symptom, builds")
    p.add_argument("--all", action="store_true", help="run every reproducer")
    p.add_argument(
        "--server",
        action="append",
        default=[],
        metavar="BUILD[,BUILD...]",
        help="the builds to run on, each on a fresh lab (see `lab servers`; default: the system's redis-server)",
    )
    p.add_argument("--report", metavar="DIR", help="keep the drills' reports (report.html) of the runs under DIR")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="the verdicts as JSON")
    out.add_argument("--markdown", action="store_true", help="the verdict table (reproducer x build) as Markdown")


def cmd_repro(args: argparse.Namespace, out: Console, err: Console) -> int:
    from pathlib import Path

    from lab import state
    from lab.repro import run

    reproducers = run.chosen(args.reproducer, every=args.all or args.list)
    home = args.home or state.default_home()
    report = None
    if args.report and not args.list:  # (checked before a lab starts: lab.drill.report)
        from lab.drill.report import check_destination

        report = check_destination(Path(args.report), home=home)
    if args.list:
        if args.json:
            print(json.dumps([_listed(r) for r in reproducers], indent=2))
            return 0
        for r in reproducers:
            out.print(f"{r.name}\n  {r.symptom}\n  {r.reference}  (builds: {r.builds})", markup=False)
        return 0
    builds = run.builds([b.strip() for given in args.server for b in given.split(",") if b.strip()])

    def progress(o: Outcome) -> None:
        if not (args.json or args.markdown):
            _print(out, o)
        else:
            err.print(f"{o.reproducer.name} on {o.build.name}: {o.verdict.status}", markup=False)

    outcomes = run.run_all(reproducers, builds, home=home, report_dir=report, progress=progress)
    if args.json:
        print(json.dumps({"about": _about(builds, args), "verdicts": [o.to_dict() for o in outcomes]}, indent=2))
    elif args.markdown:
        print(markdown(outcomes, _about(builds, args)))
    failed = [f"{o.reproducer.name} on {o.build.name}" for o in outcomes if o.verdict.status == "error"]
    if failed:  # (a verdict is a finding, exit 0; a reproducer that could not finish is not)
        err.print(f"lab repro: could not finish: {', '.join(failed)}", markup=False)
        return 1
    return 0


def _listed(r: Any) -> dict[str, str]:
    return {"name": r.name, "reference": r.reference, "symptom": r.symptom, "builds": r.builds}


def _print(out: Console, o: Outcome) -> None:
    out.print(f"{o.reproducer.name} on {o.build.name} ({o.build.release}): {o.verdict.status.upper()}", markup=False)
    out.print(f"  {o.verdict.observed}" + (f"  [{o.seconds:.1f} s]" if o.seconds else ""), markup=False)
    for line in o.verdict.evidence:
        out.print(f"    {line}", markup=False)


def _about(builds: list[Any], args: argparse.Namespace) -> dict[str, Any]:
    from lab.drill.pages import machine

    which = ["--all"] if args.all else [shlex.quote(r) for r in args.reproducer]
    servers = ["--server", ",".join(b.name for b in builds)] if args.server else []
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["lab repro", *which, *servers, "--json" if args.json else "--markdown"]),
        "builds": {b.name: b.release for b in builds},
        "machine": machine(),
    }


def markdown(outcomes: list[Outcome], about: dict[str, Any]) -> str:
    """The verdict table: a row per reproducer, a column per build, each cell its verdict and what was seen."""
    from lab.drill.pages import machine_line

    builds = list(about["builds"])
    rows: dict[str, dict[str, Outcome]] = {}
    for o in outcomes:
        rows.setdefault(o.reproducer.name, {})[o.build.name] = o
    lines = [
        f"Run {about['date']} with `{about['command']}` on {machine_line(about['machine'])}; builds: "
        + ", ".join(f"{b} ({v})" for b, v in about["builds"].items())
        + ".",
        "",
        "| reproducer | upstream | " + " | ".join(builds) + " |",
        "|---|---|" + "---|" * len(builds),
    ]
    for name, cells in rows.items():
        first = next(iter(cells.values())).reproducer
        shown = [_cell(cells[b]) if b in cells else "" for b in builds]
        lines.append(f"| `{name}` | [{_short(first.reference)}]({first.reference}) | " + " | ".join(shown) + " |")
    return "\n".join(lines)


def _cell(o: Outcome) -> str:
    text = f"**{o.verdict.status}**: {o.verdict.observed}"
    return text.replace("|", "\\|")


def _short(url: str) -> str:
    """``redis/redis#12271`` for an issue or pull request's address."""
    parts = url.rstrip("/").split("/")
    if len(parts) == 7 and parts[2] == "github.com":
        return f"{parts[3]}/{parts[4]}#{parts[6]}"
    return url.split("://", 1)[-1]
