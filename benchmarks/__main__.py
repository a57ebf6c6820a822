"""Run the benchmarks and print ``figure | baseline | ratio`` rows.

``python -m benchmarks`` runs them all; ``python -m benchmarks admin health`` only those named.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from benchmarks import (
    Row,
    bench_admin,
    bench_cli,
    bench_clients,
    bench_drill,
    bench_failover,
    bench_health,
    bench_lab,
    bench_links,
    bench_parallel,
    bench_restart,
    bench_soak,
    bench_tilt,
    bench_tls,
)

BENCHES: dict[str, Callable[[], list[Row]]] = {
    "lab": bench_lab.run,
    "cli": bench_cli.run,
    "health": bench_health.run,
    "admin": bench_admin.run,
    "failover": bench_failover.run,
    "tilt": bench_tilt.run,
    "drill": bench_drill.run,
    "clients": bench_clients.run,
    "parallel": bench_parallel.run,
    "tls": bench_tls.run,
    "soak": bench_soak.run,
    "links": bench_links.run,
    "restart": bench_restart.run,
}


def ratio(row: Row) -> str:
    """baseline / project; a zero (no write lost, no scenario stuck) has no ratio to print."""
    if row.ours == 0:
        return "same" if row.baseline == 0 else "inf"
    return f"{row.baseline / row.ours:.2f}x"


def main(argv: list[str]) -> int:
    unknown = [name for name in argv if name not in BENCHES]
    if unknown:
        print(f"benchmarks: unknown benchmark {unknown[0]!r} (choose from: {', '.join(BENCHES)})", file=sys.stderr)
        return 2
    rows = [row for name in (argv or list(BENCHES)) for row in BENCHES[name]()]
    width = max(len(r.what) for r in rows)
    print(f"\n{'benchmark':<{width}}  {'project':>12}  {'baseline':>12}  {'ratio':>6}  baseline is")
    for row in rows:
        # ratio > 1: the project is faster (or smaller) than the baseline or under the target by that factor
        ours, base = f"{row.ours:.3f} {row.unit}", f"{row.baseline:.3f} {row.unit}"
        print(f"{row.what:<{width}}  {ours:>12}  {base:>12}  {ratio(row):>6}  {row.baseline_is}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
