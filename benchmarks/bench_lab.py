"""Lab start-up and tear-down, local backend.

- ``lab up`` to healthy with the lab profile (seeded Sentinel discovery, no diskless-sync delay,
  the Sentinels started together through their pidfile gate), median and p95 of 10, against the
  same lab with each Sentinel started by its own script call (the way `lab up` did before the
  gate: one that tries a peer before it listens waits a full second), against unseeded discovery
  (hello messages), and unseeded with Redis's default repl-diskless-sync-delay of 5 s.
- ``lab down`` (Sentinels together, then data nodes together) against stopping the six nodes one
  by one through the same scripts.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from benchmarks import Row, p95
from lab import control, state
from lab.backends.local import LocalBackend
from lab.spec import LabSpec, Node


def _variant(home: Path, name: str, seed: bool, sync_delay: int) -> str:
    path = home / f"{name}.yaml"
    overrides = {"topology": {"seed_sentinel_discovery": seed}, "redis": {"repl_diskless_sync_delay": sync_delay}}
    path.write_text(yaml.safe_dump({"extends": "lab", **overrides}))
    return str(path)


@contextlib.contextmanager
def _sentinels_one_by_one() -> Iterator[None]:
    """Start every node with its own script call, concurrently: no pidfile gate."""
    original = LocalBackend.start

    def start(self: LocalBackend, spec: LabSpec, nodes: Sequence[Node]) -> None:
        with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
            for done in [pool.submit(original, self, spec, [n]) for n in nodes]:
                done.result()

    LocalBackend.start = start  # type: ignore[method-assign]
    try:
        yield
    finally:
        LocalBackend.start = original  # type: ignore[method-assign]


def up_times(
    home: Path, profile: str, runs: int, tag: str, sequential_down: bool = False, tls: bool = False
) -> tuple[list[float], list[float]]:
    """``lab up`` and ``lab down`` seconds of ``runs`` fresh local labs."""
    ups, downs = [], []
    for i in range(runs):
        name = f"bench-{tag}-{i}"
        try:
            ups.append(control.up(name, profile, "local", home, tls=tls).seconds)
            spec = state.load(home, name)
            started = time.perf_counter()
            if sequential_down:
                backend = LocalBackend()
                for node in spec.nodes:
                    backend.stop(spec, [node])
                state.remove(spec.base_dir)
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
        Row("compose lab up to healthy (median of 3)", statistics.median(ups), 5.0, "s", "target: 5 s"),
        Row("compose lab up vs local", statistics.median(ups), local_up, "s", "local backend, same run"),
        Row("compose lab down (median)", statistics.median(downs), 1.0, "s", "target: 1 s"),
    ]


def run() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="lab-bench-") as tmp:
        home = Path(tmp)
        ups, downs = up_times(home, "lab", 10, "lab")
        with _sentinels_one_by_one():
            ungated, _ = up_times(home, "lab", 10, "ungated")
        compose = _compose_rows(home, statistics.median(ups))
        naive_ups, seq_downs = up_times(home, _variant(home, "unseeded", False, 0), 3, "unseeded", True)
        default_ups, _ = up_times(home, _variant(home, "defaults", False, 5), 1, "defaults")
    up = statistics.median(ups)
    print(
        f"lab up (s): {', '.join(f'{t:.3f}' for t in ups)}\n"
        f"one script call per node: {', '.join(f'{t:.3f}' for t in ungated)}\n"
        f"unseeded: {', '.join(f'{t:.3f}' for t in naive_ups)}; unseeded + sync delay 5 s: {default_ups[0]:.3f}"
    )
    return [
        Row(
            "lab up to healthy (median of 10)",
            up,
            statistics.median(ungated),
            "s",
            "one script call per node (no gate)",
        ),
        Row("lab up to healthy (p95 of 10)", p95(ups), p95(ungated), "s", "one script call per node (no gate)"),
        Row("lab up to healthy (median of 10)", up, 1.0, "s", "target: 1 s"),
        Row("lab up to healthy", up, statistics.median(naive_ups), "s", "unseeded Sentinel discovery (median of 3)"),
        Row("lab up to healthy", up, default_ups[0], "s", "unseeded + Redis default sync delay 5 s"),
        Row(
            "lab down (median of 10)",
            statistics.median(downs),
            statistics.median(seq_downs),
            "s",
            "nodes stopped one by one",
        ),
        Row("lab down (median of 10)", statistics.median(downs), 0.2, "s", "target: 0.2 s"),
        *compose,
    ]
