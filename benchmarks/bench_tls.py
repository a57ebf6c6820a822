"""TLS against plain text, same run, local backend, the system's Redis (the TLS build): ``lab up``
to healthy of a TLS-only lab (its CA and certificates made on the way) against the plain lab, and
the client-visible unavailability of a kill-master failover over TLS against plain text."""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from benchmarks import Row
from benchmarks.bench_failover import drills
from benchmarks.bench_lab import up_times

RUNS = 5


def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="lab-bench-tls-") as tmp:
        home = Path(tmp)
        plain_up, _ = up_times(home, "lab", RUNS, "plain")
        tls_up, _ = up_times(home, "lab", RUNS, "tls", tls=True)
    print(f"lab up (s), plain: {', '.join(f'{t:.2f}' for t in plain_up)}; TLS: {', '.join(f'{t:.2f}' for t in tls_up)}")
    plain, tls = drills("local", RUNS), drills("local", RUNS, tls=True)
    return [
        Row(f"lab up, TLS, median ({RUNS})", statistics.median(tls_up), statistics.median(plain_up), "s", "plain text"),
        Row(
            f"failover unavailability, TLS, median ({RUNS})",
            statistics.median(tls),
            statistics.median(plain),
            "s",
            "plain text, same run",
        ),
    ]
