"""A soak's schedule of faults, drawn from a seed: which fault comes next and how long the lab runs
steady before it. Pure, and the same seed gives the same schedule (Jepsen's nemesis generators, in
the small): a soak that found something is replayed with its seed.

The schedule is a sequence of steps, not a timetable: each fault is healed and the lab converged
before the next one's quiet interval starts, and how long that takes is the lab's business.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from lab.errors import UsageError

#: The drills a soak can take as its steps: each one fault, undone by a heal. (Not rolling-upgrade
#: or restart-all, which move or restart every node, nor the guarded isolation, which sets config.)
SOAK_FAULTS = (
    "kill-master",
    "stop-master",
    "freeze-master",
    "isolate-master",
    "failover",
    "failover-unsafe",
    "failover-coordinated",
    "kill-sentinel",
    "quorum-loss",
    "freeze-sentinel-kill-master",
    "kill-master-and-sentinel",
    "lossy-master",
    "slow-replication",
    "one-way-master",
    "flapping-partition",
    "latency-spike",
    "sentinel-clock-jump",
)
DEFAULT_FAULTS = ("kill-master", "freeze-master", "kill-sentinel", "failover", "stop-master")
DEFAULT_INTERVAL = (20.0, 40.0)
MAX_SOAK_S = 7 * 24 * 3600.0
MIN_INTERVAL_S, MAX_INTERVAL_S = 1.0, 3600.0


@dataclass(frozen=True)
class Step:
    index: int  # from 1
    quiet_s: float  # steady workload before the fault
    fault: str


def schedule(seed: int, faults: tuple[str, ...], interval: tuple[float, float]) -> Iterator[Step]:
    """The endless schedule of ``seed``: each step a quiet interval drawn from ``interval`` and a fault
    drawn from ``faults``."""
    rng = random.Random(seed)
    index = 0
    while True:
        index += 1
        yield Step(index, round(rng.uniform(*interval), 3), rng.choice(faults))


def plan(seed: int, faults: tuple[str, ...], interval: tuple[float, float], duration: float) -> list[Step]:
    """The steps whose quiet intervals alone fit in ``duration``: at most as many as a soak of that
    length runs (each fault, its heal and the convergence take time too)."""
    steps: list[Step] = []
    elapsed = 0.0
    for step in schedule(seed, faults, interval):
        elapsed += step.quiet_s
        if elapsed > duration:
            return steps
        steps.append(step)
    raise AssertionError("unreachable")


def parse_faults(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not names:
        raise UsageError("--faults: give at least one fault")
    unknown = [n for n in names if n not in SOAK_FAULTS]
    if unknown:
        raise UsageError(f"--faults: unknown soak fault {', '.join(unknown)} (choose from: {', '.join(SOAK_FAULTS)})")
    return names


def parse_interval(text: str) -> tuple[float, float]:
    """``LO-HI`` or ``S`` seconds, each between :data:`MIN_INTERVAL_S` and :data:`MAX_INTERVAL_S`."""
    lo_text, _, hi_text = text.partition("-")
    try:
        lo = float(lo_text)
        hi = float(hi_text) if hi_text else lo
    except ValueError:
        raise UsageError(f"--interval: {text!r} is not LO-HI seconds (e.g. 20-40)") from None
    if not (MIN_INTERVAL_S <= lo <= hi <= MAX_INTERVAL_S):
        raise UsageError(
            f"--interval: {text!r} must be LO-HI with {MIN_INTERVAL_S:g} <= LO <= HI <= {MAX_INTERVAL_S:g} seconds"
        )
    return lo, hi


def parse_seed(text: str) -> int:
    try:
        seed = int(text)
    except ValueError:
        raise UsageError(f"--seed: {text!r} is not a whole number") from None
    if not 0 <= seed < 2**63:
        raise UsageError(f"--seed: {text!r} is out of range (0 to 2**63-1)")
    return seed
