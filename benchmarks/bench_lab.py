"""Lab start-up and tear-down, local backend.

- ``lab up`` to healthy with the lab profile (seeded Sentinel discovery, no diskless-sync delay),
  against the same lab rendered the naive way: unseeded discovery (hello messages), and unseeded
  with Redis's default repl-diskless-sync-delay of 5 s.
- ``lab down`` (Sentinels together, then data nodes together) against stopping the six nodes one
  by one through the same scripts.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks import Row
from lab import control, state
from lab.backends.local import LocalBackend
from lab.profile import PROFILES_DIR


def _variant(home: Path, name: str, seed: bool, sync_delay: int) -> str:
    data = yaml.safe_load((PROFILES_DIR / "lab.yaml").read_text())
    data["topology"]["seed_sentinel_discovery"] = seed
    data["redis"]["repl_diskless_sync_delay"] = sync_delay
    path = home / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _up_times(
    home: Path, profile: str, runs: int, tag: str, sequential_down: bool = False
) -> tuple[list[float], list[float]]:
    ups, downs = [], []
    for i in range(runs):
        name = f"bench-{tag}-{i}"
        try:
            ups.append(control.up(name, profile, "local", home).seconds)
            spec = state.load(home, name)
            started = time.perf_counter()
            if sequential_down:
                backend = LocalBackend()
                for node in spec.nodes:
                    backend.stop_node(spec, node)
                state.remove(spec)
            else:
                control.down(name, home)
            downs.append(time.perf_counter() - started)
        finally:
            control.down(name, home)
    return ups, downs


def _compose_rows(home: Path, local_up: float) -> list[Row]:
    from lab.docker import docker_unavailable

    if docker_unavailable() is not None:
        print("compose: Docker not available, compose figures skipped")
        return []
    ups, downs = [], []
    for i in range(3):
        name = f"bench-compose-{i}"
        try:
            ups.append(control.up(name, "lab", "compose", home).seconds)
            started = time.perf_counter()
            control.down(name, home)
            downs.append(time.perf_counter() - started)
        finally:
            control.down(name, home)
    print(f"compose lab up (s): {', '.join(f'{t:.3f}' for t in ups)}")
    return [
        ("compose lab up to healthy (median of 3)", statistics.median(ups), 5.0, "target: 5 s"),
        ("compose lab up vs local", statistics.median(ups), local_up, "local backend, same run"),
        ("compose lab down (median)", statistics.median(downs), 1.0, "target: 1 s"),
    ]


def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
        home = Path(tmp)
        ups, downs = _up_times(home, "lab", 5, "lab")
        compose = _compose_rows(home, statistics.median(ups))
        naive_ups, seq_downs = _up_times(home, _variant(home, "unseeded", False, 0), 3, "unseeded", True)
        default_ups, _ = _up_times(home, _variant(home, "defaults", False, 5), 1, "defaults")
    up = statistics.median(ups)
    print(
        f"lab up (s): {', '.join(f'{t:.3f}' for t in ups)}; unseeded: {', '.join(f'{t:.3f}' for t in naive_ups)}; "
        f"unseeded + sync delay 5 s: {default_ups[0]:.3f}"
    )
    return [
        ("lab up to healthy (median of 5)", up, statistics.median(naive_ups), "unseeded Sentinel discovery"),
        ("lab up to healthy", up, default_ups[0], "unseeded + Redis default sync delay 5 s"),
        ("lab down (median)", statistics.median(downs), statistics.median(seq_downs), "nodes stopped one by one"),
        *compose,
    ]
