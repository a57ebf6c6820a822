"""What one drill produced: the findings, the recorded history, where its report went."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lab.drill.checker import Findings
from lab.drill.history import Recorder


@dataclass
class DrillResult:
    scenario: str
    findings: Findings
    recorder: Recorder
    report_dir: Path | None
    seconds: float
