"""redis-ha-lab: render Redis/Sentinel configs and run a real HA lab from them."""

from __future__ import annotations

import importlib.resources
from pathlib import Path


def _data(name: str) -> Path:
    """conf/, scripts/ or compose/: the repository's own directory in a checkout (an editable
    install maps it there too), the copy shipped in the package (lab/data/NAME) when installed."""
    try:
        found = importlib.resources.files(f"lab.data.{name}")
    except ModuleNotFoundError:  # a checkout used without installing it
        return Path(__file__).resolve().parent.parent / name
    return Path(str(found))


CONF_DIR = _data("conf")
SCRIPTS_DIR = _data("scripts")
COMPOSE_DIR = _data("compose")
CLIENTS_DIR = _data("clients")
