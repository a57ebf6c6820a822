"""The lab CLI's argument types and bounds: each parses one value or says in one line what it expected.

Bad input is refused here, while argparse parses, so it exits 2 before anything is touched. This module
imports nothing of the lab's beyond its names, so `lab --help` and `lab status` stay fast.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

from lab.spec import NODE_NAMES

#: The longest wait a --timeout may ask for.
MAX_TIMEOUT_S = 3600.0
#: lab.drill.workloads.KINDS, without importing the drill (and redis) for `lab --help`.
WORKLOADS = ("set", "counter", "register", "list")

#: The longest drill workload. A drill keeps its whole history in memory until the report: measured
#: here (2 cores, local lab, 4 workers unpaced, counter workload, 2026-12-06), a 40 s drill acknowledged
#: 318,817 operations and peaked at 399 MB (1.25 KB an operation; 1.79 KB before the workers' entries were
#: let go as they became records), so 120 s unpaced is about 1 GB. A failover
#: that outlasts the workload extends it anyway (lab.drill.scenarios.RECOVERY_TAIL_S). A soak (`lab drill soak`)
#: spools its history to disk as it goes: bounded by MAX_SOAK_S only.
MAX_DRILL_S = 120.0
#: The longest soak (lab.drill.nemesis.MAX_SOAK_S): its history goes to disk as it is recorded.
MAX_SOAK_S = 7 * 24 * 3600.0
#: The most drill workers: threads of one Python process (one core at most, under the GIL); past a
#: few dozen they measure that process's own queueing, not the failover (500 made a 2 s drill take
#: 63 s on 2 cores). Measured here: a 2 s kill-sentinel drill took 9.1 s with 64 workers against
#: 7.5 s with 4 (both with the 3 s recovery tail, heal and report).
MAX_CLIENTS = 64
#: --rate bounds (operations/s of all workers together): below one a minute a drill records next to nothing (and
#: 1e-300 overflowed the workers' waits), above a million is "as fast as they go" (leave --rate out).
MIN_RATE, MAX_RATE = 1 / 60, 1e6


def number(text: str, what: str) -> float:
    """A finite or infinite float; ``what`` names it in the error."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None


def seconds_between(least: float, most: float) -> Callable[[str], float]:
    """An argument type for a number of seconds from ``least`` to ``most``."""

    def parse(text: str) -> float:
        value = number(text, "seconds")
        if not math.isfinite(value) or not least <= value <= most:
            raise argparse.ArgumentTypeError(f"must be a number of seconds from {least:g} to {most:g}, got {text!r}")
        return value

    return parse


def whole_between(unit: str, least: int, most: int) -> Callable[[str], int]:
    """An argument type for a whole number of ``unit`` from ``least`` to ``most`` ("2.0" is 2)."""

    def parse(text: str) -> int:
        value = number(text, unit)
        if not math.isfinite(value) or value != int(value) or not least <= value <= most:
            raise argparse.ArgumentTypeError(f"must be a whole number of {unit} from {least} to {most}, got {text!r}")
        return int(value)

    return parse


#: --timeout: a wait of up to an hour.
seconds = seconds_between(0, MAX_TIMEOUT_S)
#: --duration: up to a soak's longest; a drill's own bound (MAX_DRILL_S) is checked once the scenario is known.
duration = seconds_between(0, MAX_SOAK_S)
#: `lab clock --stall`: stand still this long, then catch up.
stall = seconds_between(0.1, 600)
#: `lab flap --period`.
period = seconds_between(0.2, 3600)
#: `lab sweep --span`: how long each cell's links stay degraded.
span = seconds_between(1, 60)
#: --repeat: runs of a drill or of each matrix cell.
repeat = whole_between("runs", 1, 100)


def parallel(text: str) -> int:
    """`lab clients --parallel`: labs side by side (the bound lives with the fan-out, imported only here)."""
    from lab.drill.fanout import MAX_PARALLEL

    return whole_between("labs", 1, MAX_PARALLEL)(text)


def jump(text: str) -> float:
    """`lab clock --jump`: seconds forward or (negative) back, at most an hour, not 0."""
    value = number(text, "seconds")
    if not math.isfinite(value) or value == 0 or abs(value) > 3600:
        raise argparse.ArgumentTypeError(f"must be seconds from -3600 to 3600, not 0, got {text!r}")
    return value


def node(text: str) -> str:
    if text not in NODE_NAMES:
        raise argparse.ArgumentTypeError(f"no node {text!r} (choose from: {', '.join(NODE_NAMES)})")
    return text


def count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    return int(text)


def clients(text: str) -> int:
    value = count(text)
    if not 1 <= value <= MAX_CLIENTS:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_CLIENTS}, got {text!r}")
    return value


def rate(text: str) -> float:
    value = number(text, "operations per second")
    if not MIN_RATE <= value <= MAX_RATE:
        raise argparse.ArgumentTypeError(f"must be from 1/60 to {MAX_RATE:g} operations/s, got {text!r}")
    return value


def path(text: str) -> Path:
    if not text:
        raise argparse.ArgumentTypeError("expected a path, got ''")
    return Path(text)
