"""Run every benchmark and print ``figure | baseline | ratio`` rows (python -m benchmarks)."""

from __future__ import annotations

import sys

from benchmarks import bench_admin, bench_failover, bench_health, bench_lab


def main() -> int:
    rows = bench_lab.run() + bench_health.run() + bench_admin.run() + bench_failover.run()
    width = max(len(r[0]) for r in rows)
    print(f"\n{'benchmark':<{width}}  {'project':>10}  {'baseline':>10}  {'ratio':>6}  baseline is")
    for name, ours, base, what in rows:
        # ratio > 1: the project is faster than the baseline (or under the target) by that factor
        print(f"{name:<{width}}  {ours:>9.3f}s  {base:>9.3f}s  {base / ours:>5.2f}x  {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
