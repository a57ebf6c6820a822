"""Backends run a :class:`~lab.spec.LabSpec`: ``local`` (processes), ``compose`` (containers), and ``ssh`` (hosts
the lab did not start: `lab attach`)."""

from __future__ import annotations

import functools
from collections.abc import Iterable

from lab.backends.base import Backend
from lab.errors import UsageError
from lab.spec import LabSpec, Node

BACKENDS = ("local", "compose")


@functools.cache
def get_backend(name: str) -> Backend:
    """The backend called ``name``, resolved once per process; ``auto`` is compose where a Docker
    engine and Compose v2 answer, else local. Docker is only asked when something needs it, so a
    command on a compose lab (``down``, ``status``) still works, and says so, when the engine is gone."""
    if name == "auto":
        from lab.docker import docker_unavailable

        name = "local" if docker_unavailable() else "compose"
    if name == "local":
        from lab.backends.local import LocalBackend

        return LocalBackend()
    if name == "compose":
        from lab.backends.compose import ComposeBackend

        return ComposeBackend()
    if name == "ssh":  # (an attached lab's: `lab attach` makes them, `lab up` never)
        from lab.backends.ssh import SshBackend

        return SshBackend()
    raise UsageError(f"unknown backend {name!r} (choose from: auto, {', '.join(BACKENDS)})")


def log_tails(spec: LabSpec, lines: int = 5, nodes: Iterable[Node] | None = None) -> str:
    """The last ``lines`` of each node's log (all nodes by default), for an error or a failed test."""
    backend = get_backend(spec.backend)
    out = []
    for node in spec.nodes if nodes is None else nodes:
        path = backend.log_path(spec, node)
        try:
            tail = path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            continue
        out.append(f"--- {node.name} ({path})\n" + "\n".join(tail))
    return "\n".join(out)
