"""A lab's state directory: ``<home>/<name>/`` with state.json, 0600 secrets and node directories."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from lab.errors import NotRunning
from lab.spec import LabSpec, read_secret, write_secret

STATE_FILE = "state.json"
REDIS_SECRET = "redis.pass"
SENTINEL_SECRET = "sentinel.pass"


def default_home() -> Path:
    """Where labs keep their state: $LAB_HOME, else ./.lab."""
    return Path(os.environ.get("LAB_HOME") or ".lab").absolute()


def state_dir(home: Path, name: str) -> Path:
    return home / name


def save(spec: LabSpec, extra: dict[str, Any] | None = None) -> None:
    """Write the spec (and backend extras such as applied faults) atomically; secrets go to 0600 files."""
    directory = spec.base_dir
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    write_secret(directory / REDIS_SECRET, spec.password)
    if spec.sentinel_password:
        write_secret(directory / SENTINEL_SECRET, spec.sentinel_password)
    payload = {"spec": spec.to_dict(), **(extra or {})}
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".state-")
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True)
    os.replace(tmp, directory / STATE_FILE)


def load_raw(home: Path, name: str) -> dict[str, Any]:
    path = state_dir(home, name) / STATE_FILE
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise NotRunning(f"lab {name!r} is not running (no state in {path.parent})") from None
    return data


def load(home: Path, name: str) -> LabSpec:
    data = load_raw(home, name)
    directory = state_dir(home, name)
    password = read_secret(directory / REDIS_SECRET) or ""
    return LabSpec.from_dict(data["spec"], password, read_secret(directory / SENTINEL_SECRET))


def update(spec: LabSpec, **extra: Any) -> None:
    """Merge backend extras (e.g. ``faults``) into the state file."""
    data = load_raw(spec.base_dir.parent, spec.name)
    data.update(extra)
    data.pop("spec", None)
    save(spec, data)


def exists(home: Path, name: str) -> bool:
    return (state_dir(home, name) / STATE_FILE).is_file()


def list_labs(home: Path) -> list[str]:
    if not home.is_dir():
        return []
    return sorted(p.parent.name for p in home.glob(f"*/{STATE_FILE}"))


def remove(spec: LabSpec, keep_data: bool = False) -> None:
    """Delete the lab's state; with ``keep_data`` only state.json goes (node dirs with data stay)."""
    directory = spec.base_dir
    if keep_data:
        (directory / STATE_FILE).unlink(missing_ok=True)
        return
    shutil.rmtree(directory, ignore_errors=True)
