"""A drill's finding gates (`lab drill --fail-on 'lost>0'`): parsed before anything starts, checked
against the summary after the drill. A gate that holds fails the drill (exit 1), not the command."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lab.errors import UsageError

CONDITION = re.compile(r"^\s*([a-z_]+)\s*(>=|<=|==|!=|>|<)\s*(-?\d+(?:\.\d+)?)\s*$")
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True)
class Gate:
    metric: str
    op: str
    value: float

    @property
    def name(self) -> str:
        """As the user wrote it, normalised: ``lost>0``."""
        return f"{self.metric}{self.op}{self.value:g}"

    def holds(self, summary: dict[str, Any]) -> bool:
        return OPERATORS[self.op](float(summary[self.metric]), self.value)

    def worded(self, summary: dict[str, Any]) -> str:
        """What was measured against the gate: ``lost=3 > 0``."""
        return f"{self.metric}={summary[self.metric]:g} {self.op} {self.value:g}"


def parse(texts: list[str], metrics: list[str]) -> list[Gate]:
    gates = []
    for text in texts:
        match = CONDITION.match(text)
        if not match:
            raise UsageError(f"--fail-on {text!r}: expected METRIC OP NUMBER, e.g. 'lost>0'")
        metric, op, value = match.groups()
        if metric not in metrics:
            raise UsageError(f"--fail-on {text!r}: unknown metric {metric!r} (choose from: {', '.join(metrics)})")
        gates.append(Gate(metric, op, float(value)))
    return gates


def failing(summary: dict[str, Any], gates: list[Gate]) -> list[str]:
    """The gates that held, worded."""
    return [g.worded(summary) for g in gates if g.holds(summary)]
