"""Run the benchmarks and print ``figure | baseline | ratio`` rows.

``python -m benchmarks`` runs them all; ``python -m benchmarks admin health`` only those named.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from benchmarks import Row, bench_admin, bench_failover, bench_health, bench_lab

BENCHES: dict[str, Callable[[], list[Row]]] = {
    "lab": bench_lab.run,
    "health": bench_health.run,
    "admin": bench_admin.run,
    "failover": bench_failover.run,
}


def main(argv: list[str]) -> int:
    unknown = [name for name in argv if name not in BENCHES]
    if unknown:
        print(f"benchmarks: unknown benchmark {unknown[0]!r} (choose from: {', '.join(BENCHES)})", file=sys.stderr)
        return 2
    rows = [row for name in (argv or list(BENCHES)) for row in BENCHES[name]()]
    width = max(len(r[0]) for r in rows)
    print(f"\n{'benchmark':<{width}}  {'project':>10}  {'baseline':>10}  {'ratio':>6}  baseline is")
    for name, ours, base, what in rows:
        # ratio > 1: the project is faster than the baseline (or under the target) by that factor
        print(f"{name:<{width}}  {ours:>9.3f}s  {base:>9.3f}s  {base / ours:>5.2f}x  {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
