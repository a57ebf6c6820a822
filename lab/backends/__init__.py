"""Backends run a :class:`~lab.spec.LabSpec`: ``local`` (processes) and, later, ``compose``."""

from __future__ import annotations

from lab.backends.base import Backend
from lab.errors import LabError

BACKENDS = ("local", "compose")


def get_backend(name: str) -> Backend:
    """``auto`` is compose where a Docker engine and Compose v2 answer, else local."""
    if name == "auto":
        from lab.docker import docker_unavailable

        name = "local" if docker_unavailable() else "compose"
    if name == "local":
        from lab.backends.local import LocalBackend

        return LocalBackend()
    if name == "compose":
        from lab.backends.compose import ComposeBackend

        return ComposeBackend()
    raise LabError(f"unknown backend {name!r} (choose from: auto, {', '.join(BACKENDS)})")
