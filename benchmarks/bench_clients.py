"""The client matrix (`lab clients`), local backend: every client through every scenario in its
defaults and its recommended settings, in one run.

- The whole matrix's wall time against the 15-minute target.
- Per client, the recommended settings against the defaults measured in the same run: the worst and
  the median of the scenarios' longest unavailability, the acknowledged writes lost over all
  scenarios, and the scenarios in which the client was stuck (no write acknowledged in the last 2 s).
A client that cannot run here (no Node.js) is left out with the reason.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from benchmarks import Row
from lab import control
from lab.drill.clients import CLIENTS
from lab.drill.matrix import Cell, default_scenarios, run_matrix

TARGET_S = 15 * 60.0


def _rows(client: str, cells: list[Cell]) -> list[Row]:
    mine = {s: [c for c in cells if c.client == client and c.settings == s] for s in ("defaults", "recommended")}
    fixed, default = mine["recommended"], mine["defaults"]

    def longest(cs: list[Cell]) -> list[float]:
        return [c.unavailable_s for c in cs]

    def stuck(cs: list[Cell]) -> float:
        return float(sum(not c.recovered for c in cs))

    return [
        Row(
            f"{client}: worst unavailability, recommended", max(longest(fixed)), max(longest(default)), "s", "defaults"
        ),
        Row(
            f"{client}: median unavailability, recommended",
            statistics.median(longest(fixed)),
            statistics.median(longest(default)),
            "s",
            "defaults",
        ),
        Row(
            f"{client}: writes lost (all scenarios), recommended",
            float(sum(c.lost for c in fixed)),
            float(sum(c.lost for c in default)),
            "writes",
            "defaults",
        ),
        Row(f"{client}: scenarios stuck, recommended", stuck(fixed), stuck(default), "", "defaults"),
    ]


def run() -> list[Row]:
    clients = []
    for name, client in CLIENTS.items():
        if why := client.missing():
            print(f"clients: {name} left out: {why}")
        else:
            clients.append(name)
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
        home = Path(tmp)
        spec = control.up("bench-clients", "lab", "local", home).spec
        started = time.perf_counter()
        try:
            cells = run_matrix(
                spec, clients, default_scenarios(), ["defaults", "recommended"], home / "matrix", progress=print
            )
        finally:
            control.down(spec.name, home)
        seconds = time.perf_counter() - started
    print(f"clients: {len(cells)} cells in {seconds:.0f} s")
    rows = [Row(f"`lab clients`, full matrix ({len(cells)} cells)", seconds, TARGET_S, "s", "target: 15 min")]
    return rows + [row for name in clients for row in _rows(name, cells)]
