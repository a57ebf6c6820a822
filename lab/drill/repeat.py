"""A finding's odds: the same drill run N times (``lab drill --repeat N``, ``lab clients --repeat N``,
``make findings``), each run's figures kept, and per figure in how many runs it happened (k of N) and
its spread (median, min-max). A behaviour that varies run to run is given as its odds, never as one
run's outcome."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.drill.result import DrillResult
from lab.drill.steps import wait_converged
from lab.spec import LabSpec

MAX_REPEAT = 100


@dataclass
class Tally:
    """One drill's runs: each run's summary (lab.drill.checker.Findings.summary)."""

    scenario: str
    runs: list[dict[str, Any]] = field(default_factory=list)

    def count(self, key: str) -> int:
        return sum(1 for r in self.runs if r[key] > 0)

    def odds(self, key: str) -> str:
        """In how many runs ``key`` was above zero: ``k of N``."""
        return f"{self.count(key)} of {len(self.runs)}"

    def spread(self, key: str, scale: float = 1.0, unit: str = "") -> str:
        """median (min-max) of ``key``; one figure when every run gave the same."""
        values = sorted(r[key] / scale for r in self.runs)
        form = ".2f" if scale != 1.0 else ",.0f"
        low, mid, high = (format(v, form) for v in (values[0], statistics.median(values), values[-1]))
        return f"{mid}{unit}" if low == high else f"{mid}{unit} ({low}-{high})"

    def as_dict(self) -> dict[str, Any]:
        keys = list(self.runs[0]) if self.runs else []
        numeric = [
            k for k in keys if isinstance(self.runs[0][k], int | float) and not isinstance(self.runs[0][k], bool)
        ]
        return {
            "scenario": self.scenario,
            "runs": len(self.runs),
            "odds": {k: self.count(k) for k in numeric},
            "median": {k: statistics.median(r[k] for r in self.runs) for k in numeric},
            "worst": {k: max(r[k] for r in self.runs) for k in numeric},
            "each": self.runs,
        }


def odds_text(k: int, n: int) -> str:
    """'k of N' where it is neither none nor all; else 'never' / 'every run' (n > 1)."""
    if n == 1:
        return "yes" if k else "no"
    return "never" if k == 0 else ("every run" if k == n else f"{k} of {n}")


def repeat_drill(
    spec: LabSpec,
    run: Callable[[Path], DrillResult],
    times: int,
    report_dir: Path,
    progress: Callable[[str], None] = lambda _line: None,
) -> tuple[Tally, list[DrillResult]]:
    """``run(report_dir / f"run-{k}")`` ``times`` times, the lab converged before each (every drill
    heals after itself; a second failover may still be settling)."""
    results = []
    tally = Tally("")
    for k in range(1, times + 1):
        wait_converged(spec, timeout=60)
        result = run(report_dir / f"run-{k}")
        tally.scenario = result.scenario
        tally.runs.append(result.findings.summary())
        results.append(result)
        s = tally.runs[-1]
        progress(
            f"run {k}/{times}: {s['ok']:,} ok, {s['lost']:,} lost, {s['failovers']} failover(s), "
            f"longest unavailability {s['unavailable_ms'] / 1000:.2f} s"
        )
    return tally, results
