"""The faults a lab has recorded in its state (``faults`` in state.json): what ``lab heal`` and ``lab down``
revert and what ``lab status`` shows (an isolated node). Reading them needs no more than the state file, so
``lab status`` does not load what injects and reverts them (:mod:`lab.faults`: redis-py, the waits)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from lab import state
from lab.spec import LabSpec


@dataclass(frozen=True)
class Fault:
    kind: str
    node: str
    peers: tuple[str, ...] = field(default_factory=tuple)
    #: config faults: (directive, the value it had before), restored on revert; link faults: their
    #: parameters (loss, delay, jitter, rate, direction, period, one_way)
    settings: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    pid: int = 0  # the delayer serving a degraded or flapping link (lab.delayer)
    queue: int = 0  # its NFQUEUE

    @property
    def key(self) -> str:
        """How the fault is named (in an interrupted command's undo log, in ``lab heal``'s output)."""
        if self.kind == "config":
            return f"config {self.node} ({', '.join(f'{name} {value}' for name, value in self.settings)})"
        named = f"{self.kind} {self.node}" + (f" from {', '.join(self.peers)}" if self.peers else "")
        return named + (f" ({', '.join(f'{name} {value}' for name, value in self.settings)})" if self.settings else "")


def recorded(spec: LabSpec) -> list[Fault]:
    raw = state.load_raw(spec.base_dir.parent, spec.name).get("faults", [])
    return [
        Fault(
            f["kind"],
            f["node"],
            tuple(f.get("peers", ())),
            tuple((str(name), str(value)) for name, value in f.get("settings", ())),
            int(f.get("pid", 0)),
            int(f.get("queue", 0)),
        )
        for f in raw
    ]


def save(spec: LabSpec, faults: list[Fault]) -> None:
    state.record(spec, faults=[asdict(f) for f in faults])


def isolated_nodes(spec: LabSpec) -> set[str]:
    return {f.node for f in recorded(spec) if f.kind == "isolate"}
