"""`make bench`: the project's figures next to a baseline measured in the same run."""

from __future__ import annotations

import math
from typing import NamedTuple


class Row(NamedTuple):
    """One printed line: the project's figure and the baseline's, in ``unit`` (s, ms, MB)."""

    what: str
    ours: float
    baseline: float
    unit: str
    baseline_is: str


def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile (of 10 runs: the slowest)."""
    ordered = sorted(values)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]
