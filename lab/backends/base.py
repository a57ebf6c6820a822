"""The interface every backend implements."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Literal, Protocol

from lab.profile import Profile
from lab.spec import LabSpec, Node

NodeState = Literal["up", "down", "frozen", "isolated"]


class Backend(Protocol):
    name: str

    def up(self, spec: LabSpec, profile: Profile) -> None:
        """Start every node of ``spec`` (rendering its files first) and return once they run."""

    def down(self, spec: LabSpec, keep_data: bool = False) -> None:
        """Stop everything ``up`` started, undo every fault and remove the lab's state; idempotent."""

    def node_state(self, spec: LabSpec, node: Node) -> NodeState:
        """The node's process state as the backend sees it (not its Redis role)."""

    def start_node(self, spec: LabSpec, node: Node) -> None: ...

    def stop_node(self, spec: LabSpec, node: Node) -> None: ...

    def log_path(self, spec: LabSpec, node: Node) -> Path: ...

    def unsupported(self, kind: str) -> str | None:
        """Why a fault kind (kill, stop, freeze, isolate) cannot be injected here; None if it can."""

    def signal_node(self, spec: LabSpec, node: Node, sig: signal.Signals) -> None:
        """Send a signal (SIGKILL/SIGTERM wait for the exit; SIGSTOP/SIGCONT freeze and thaw)."""

    def isolate(self, spec: LabSpec, node: Node, peers: list[Node]) -> None:
        """Cut all traffic between ``node`` and ``peers``."""

    def heal_isolation(self, spec: LabSpec, node: Node | None = None, peers: list[Node] | None = None) -> None:
        """Undo :meth:`isolate` for one node, or for the whole lab when ``node`` is None."""
