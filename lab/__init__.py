"""redis-ha-lab: render Redis/Sentinel configs and run a real HA lab from them."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def _data(name: str) -> Path:
    """conf/, scripts/, compose/ or ansible/: the repository's own directory in a checkout (an editable
    install maps it there too), the copy shipped in the package (lab/data/NAME) when installed."""
    try:
        spec = importlib.util.find_spec(f"lab.data.{name}")
    except ModuleNotFoundError:  # a checkout used without installing it
        spec = None
    # A directory without __init__.py is a namespace package: its directory is its search location
    # (importlib.resources would hand back a MultiplexedPath, not a filesystem path).
    if spec is None or not spec.submodule_search_locations:
        return Path(__file__).resolve().parent.parent / name
    return Path(next(iter(spec.submodule_search_locations)))


CONF_DIR = _data("conf")
SCRIPTS_DIR = _data("scripts")
COMPOSE_DIR = _data("compose")
CLIENTS_DIR = _data("clients")
ANSIBLE_DIR = _data("ansible")
