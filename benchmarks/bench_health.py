"""check_redis_health speed: a full check of the 6-node lab through Sentinel (instances queried
concurrently) and a single-instance check, against `redis-cli INFO` run once per node."""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks import Row
from lab import control
from redis_ha_health.check_redis_health import main

RUNS = 20


def _timed(fn: object, runs: int = RUNS) -> float:
    assert callable(fn)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
        home = Path(tmp)
        spec = control.up("bench-health", "lab", "local", home).spec
        try:
            os.environ["REDIS_PASSWORD"] = spec.password
            os.environ["SENTINEL_PASSWORD"] = spec.sentinel_password or ""
            sentinels = [a for s in spec.sentinels for a in ("--sentinel", s.address)]
            master = spec.initial_master
            sink: list[str] = []
            full = _timed(lambda: main([*sentinels, "--expect-replicas", "2"], out=sink.append))
            single = _timed(lambda: main(["--host", master.host, "--port", str(master.port)], out=sink.append))
            assert all(line.startswith("REDIS OK") for line in sink), sink[-1]
            env = {**os.environ, "REDISCLI_AUTH": spec.password}
            senv = {**os.environ, "REDISCLI_AUTH": spec.sentinel_password or ""}

            def cli_info(node_env: dict[str, str], host: str, port: int) -> None:
                subprocess.run(
                    ["redis-cli", "--no-auth-warning", "-h", host, "-p", str(port), "INFO"],
                    env=node_env,
                    capture_output=True,
                    check=True,
                )

            def info_all() -> None:
                for node in spec.nodes:
                    cli_info(env if node.kind == "redis" else senv, node.host, node.port)

            baseline_all = _timed(info_all)
            baseline_one = _timed(lambda: cli_info(env, master.host, master.port))
        finally:
            control.down(spec.name, home)
    print(
        f"health: full {full * 1000:.1f} ms, single {single * 1000:.1f} ms; redis-cli INFO x6 "
        f"{baseline_all * 1000:.1f} ms, x1 {baseline_one * 1000:.1f} ms"
    )
    return [
        Row(
            "health check, 6-node lab via Sentinel (median)",
            full * 1000,
            baseline_all * 1000,
            "ms",
            "redis-cli INFO per node",
        ),
        Row("health check, 6-node lab via Sentinel", full * 1000, 150.0, "ms", "target: 150 ms"),
        Row("health check, single instance (median)", single * 1000, baseline_one * 1000, "ms", "one redis-cli INFO"),
        Row("health check, single instance", single * 1000, 30.0, "ms", "target: 30 ms"),
    ]
