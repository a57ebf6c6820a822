"""A reproducer, and what one run of it on one build concluded."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from lab.servers import Server
from lab.spec import LabSpec

#: ``error``: the reproducer could not finish (a node that never answered): not a verdict on the bug.
Status = Literal["reproduced", "not reproduced", "not applicable", "error"]


@dataclass
class Verdict:
    """``evidence``: what was seen, a line each (events, log lines, the checker's findings); ``observed``:
    the one-line account of it (what happened instead, when not reproduced)."""

    status: Status
    observed: str
    evidence: list[str] = field(default_factory=list)
    #: The measured numbers behind the verdict, by name (``--json`` carries them: a table or a test reads them).
    figures: dict[str, float] = field(default_factory=dict)


@dataclass
class Trial:
    """What a run is given besides its lab: where a drill it runs writes its report (None: nowhere)."""

    report_dir: Path | None = None


@dataclass(frozen=True)
class Reproducer:
    """``run`` acts on a fresh, healthy lab of ``profile`` and judges; ``applies`` says why a build cannot show
    the failure (a feature it lacks), or None; ``builds`` says the same for --list."""

    name: str
    reference: str
    symptom: str
    run: Callable[[LabSpec, Trial], Verdict]
    applies: Callable[[Server], str | None] = lambda _server: None
    builds: str = "all"
    profile: str = "lab"
    #: A fault kind the lab's backend must be able to inject, checked before a lab is started.
    needs: str = ""
    #: A client library the reproducer drives (lab.drill.clients), checked before a lab is started.
    client: str | None = None
