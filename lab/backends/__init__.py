"""Backends run a :class:`~lab.spec.LabSpec`: ``local`` (processes) and, later, ``compose``."""

from __future__ import annotations

from lab.backends.base import Backend
from lab.errors import LabError

BACKENDS = ("local", "compose")


def get_backend(name: str) -> Backend:
    if name in ("local", "auto"):
        from lab.backends.local import LocalBackend

        return LocalBackend()
    if name == "compose":
        raise LabError("the compose backend is not implemented yet (use --backend local)")
    raise LabError(f"unknown backend {name!r} (choose from: auto, {', '.join(BACKENDS)})")
