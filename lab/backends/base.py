"""The interface every backend implements.

A backend only starts, stops, signals and observes the processes or containers of a lab that
:mod:`lab.control` has already rendered and saved; it never renders and never writes the lab's state.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol

from lab.links import LinkRule
from lab.spec import LabSpec, Layout, Node

NodeState = Literal["up", "down", "frozen", "isolated"]
#: The faults made of iptables rules on a node's links (and, for some, a delayer process).
LINK_FAULTS = ("isolate", "degrade", "flap")


class Backend(Protocol):
    name: str
    layout: Layout

    def network(self, name: str, attempt: int) -> str | None:
        """The first three octets of a new lab's addresses (None: the backend's default placement)."""

    def prepare(self, spec: LabSpec) -> None:
        """Check that ``spec`` can start here now (binaries, free addresses, engine, image).

        Called before anything is created, so a refusal leaves nothing behind."""

    def start(self, spec: LabSpec, nodes: Sequence[Node]) -> None:
        """Start ``nodes`` together and return once each serves; raise NodeStartError naming a node that did not."""

    def stop(self, spec: LabSpec, nodes: Sequence[Node]) -> None:
        """Stop ``nodes`` cleanly; idempotent. A backend that stops nodes one kind at a time does the
        kinds in the order given (``down`` lists the Sentinels first: no failover while data nodes go)."""

    def remove(self, spec: LabSpec) -> list[str]:
        """Remove whatever the lab still has running or allocated (stray processes, containers,
        networks, firewall rules); return what could not be removed."""

    def node_state(self, spec: LabSpec, node: Node) -> NodeState:
        """The node's process state as the backend sees it (not its Redis role)."""

    def log_path(self, spec: LabSpec, node: Node) -> Path: ...

    def unsupported(self, kind: str) -> str | None:
        """Why a fault kind (kill, stop, freeze, isolate, degrade, flap, clock) cannot be injected here; None
        if it can."""

    def signal_node(self, spec: LabSpec, node: Node, sig: signal.Signals) -> None:
        """Send a signal (SIGKILL/SIGTERM wait for the exit; SIGSTOP/SIGCONT freeze and thaw)."""

    def heal_isolation(self, spec: LabSpec) -> None:
        """Remove every link rule of the lab (one fault's rules go by :meth:`delete_rules`)."""

    def add_rules(self, spec: LabSpec, rules: list[LinkRule]) -> None:
        """Put link rules in place (lab.links: an isolated, degraded or flapping link)."""

    def delete_rules(self, spec: LabSpec, rules: list[LinkRule]) -> None:
        """Remove link rules; idempotent."""

    def restart_with(self, spec: LabSpec, node: Node, env: dict[str, str]) -> None:
        """Restart ``node`` with ``env`` added to its process's environment (lab.clockshift)."""

    def start_delayer(self, spec: LabSpec, node: Node, args: list[str]) -> tuple[int, int]:
        """Start lab.delayer where ``node``'s packets pass (its pid, the queue it serves)."""

    def isolation_rules(self, spec: LabSpec) -> list[str]:
        """The packet-dropping rules the lab has in place now, as ``iptables -S`` lines (none: [])."""
