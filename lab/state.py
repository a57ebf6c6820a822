"""A lab's state directory: ``<home>/<name>/`` with state.json, 0600 secrets and node directories.

A lab is identified by its directory. A state file that names another directory is a copy (that
directory still holds its own state) or a move: either way it is loaded as the lab of *this*
directory, so it can never act on the original.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from lab.errors import LabError, NotRunning, UsageError
from lab.home import DELAYER_LOG, check_home, lab_dir
from lab.home import STATE_FILE as STATE_FILE  # (lab.state is where the lab code reads it)
from lab.lock import holder_pid
from lab.secretfiles import read_secret, write_secret
from lab.spec import (
    ACL_DIR,
    COMPOSE_ENV,
    MONITORING_DIR,
    NODE_NAMES,
    REDIS_SECRET,
    SENTINEL_SECRET,
    LabSpec,
    read_acl_secrets,
    write_acl_secrets,
)
from lab.tls import TLS_DIR

#: What a lab makes in its directory: the only names `down` and a rollback delete.
LAB_DIRS = frozenset({*NODE_NAMES, ACL_DIR, TLS_DIR, MONITORING_DIR})
#: Left by `down --keep-data`: the only directory without state that `up` adopts.
KEPT = "kept"
#: The key of `lab env`'s marker (see :func:`lab.profile.env_marker`).
ENV_KEY = "env.key"
LAB_ENTRIES = LAB_DIRS | {STATE_FILE, REDIS_SECRET, SENTINEL_SECRET, COMPOSE_ENV, ENV_KEY, KEPT, DELAYER_LOG}


class CorruptState(LabError):
    """state.json exists but cannot be read as a lab."""


def default_home() -> Path:
    """Where labs keep their state: $LAB_HOME, else ./.lab (checked by :func:`lab.home.check_home`)."""
    return check_home(Path(os.environ.get("LAB_HOME") or ".lab"))


def state_dir(home: Path, name: str) -> Path:
    """The lab's directory, through the gate (:func:`lab.home.lab_dir`): never outside ``home``."""
    return lab_dir(home, name)


def save(spec: LabSpec, extra: dict[str, Any] | None = None, directory: Path | None = None) -> None:
    """Write the spec (and extras such as applied faults) atomically; secrets go to 0600 files.

    ``directory`` defaults to the lab's own; a new lab writes into its staging directory first.
    """
    directory = directory or spec.base_dir
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    write_secret(directory / REDIS_SECRET, spec.password)
    if spec.sentinel_password:
        write_secret(directory / SENTINEL_SECRET, spec.sentinel_password)
    write_acl_secrets(directory, spec.acl_passwords)
    _write(directory, {"spec": spec.to_dict(), **(extra or {})})


def _write(directory: Path, payload: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".state-")
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle, indent=2, sort_keys=True)
    os.replace(tmp, directory / STATE_FILE)


def load_raw(home: Path, name: str) -> dict[str, Any]:
    path = state_dir(home, name) / STATE_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise NotRunning(f"lab {name!r} is not running (no state in {path.parent})") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CorruptState(f"{path} is unreadable ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("spec"), dict):
        raise CorruptState(f"{path} is not a lab's state")
    return data


def check_tree(directory: Path) -> None:
    """The directories a lab makes in its own (node directories, users/, tls/) are real directories in
    it: one that became a symbolic link would have its servers write pidfiles, logs, data and configs
    wherever it points (and a graceful stop delete a pidfile there)."""
    for name in sorted(LAB_DIRS):
        entry = directory / name
        if entry.is_symlink() or (entry.exists() and not entry.is_dir()):
            what = f"a symbolic link to {os.readlink(entry)}" if entry.is_symlink() else "not a directory"
            raise UsageError(
                f"{entry} is {what}, not the lab's own directory: nothing was done; put the real one "
                "back (or remove it) and try again"
            )


def load(home: Path, name: str, *, runnable: bool = True) -> LabSpec:
    """The lab of ``<home>/<name>``. ``runnable``: refuse a copied or moved lab directory (its
    files name the original's directory and addresses, so it cannot run from here); ``down``
    and ``list`` load such a lab with ``runnable=False`` to remove or show it."""
    data = load_raw(home, name)
    directory = state_dir(home, name)
    check_tree(directory)
    password = read_secret(directory / REDIS_SECRET) or ""
    try:
        users = read_acl_secrets(directory)
        spec = LabSpec.from_dict(data["spec"], password, read_secret(directory / SENTINEL_SECRET), users)
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptState(f"{directory / STATE_FILE} is not a lab's state ({exc})") from None
    if spec.base_dir != directory:
        # A copy (the original still has its state) or a move: this directory is its own lab.
        original = spec.base_dir
        copied = (original / STATE_FILE).exists()
        spec = dataclasses.replace(
            spec,
            name=name,
            base_dir=directory,
            moved_from=None if copied else original,
            copy_of=original if copied else None,
        )
        if runnable:
            what = f"is a copy of {original}" if copied else f"was moved from {original}"
            raise LabError(
                f"lab {name} {what}: its files name that directory and its addresses, so it cannot run "
                f"from here; `lab down --name {name}` removes it" + ("" if copied else " (and stops what it runs)")
            )
    return spec


def record(spec: LabSpec, **extra: Any) -> None:
    """Merge extras (``faults``, a helper's owner) into ``spec``'s lab's state file, keeping the spec the file
    holds: a command may run on a variant of it (`lab sweep`'s row, with the row's down-after) that must not
    become the lab's."""
    data = load_raw(spec.base_dir.parent, spec.base_dir.name)
    data.update(extra)
    _write(spec.base_dir, data)


def update(spec: LabSpec, **extra: Any) -> None:
    """Save ``spec`` as the lab's (a node moved to another build), merging extras into the state file."""
    data = load_raw(spec.base_dir.parent, spec.base_dir.name)
    data.update(extra)
    data.pop("spec", None)
    save(spec, data)


@dataclasses.dataclass(frozen=True)
class HelperOwner:
    """Whose helper a lab is (lab.drill.fanout: `lab clients --parallel`): the lab it helps, the run's pid,
    and whether that run is still under way (a kill -9 leaves its helpers for the next run to remove)."""

    lab: str
    pid: int
    running: bool  # that run still holds the lock of the lab it helps


def helper_of(lab: str) -> dict[str, Any]:
    """The state entry that marks a lab as this process's helper of ``lab``."""
    return {"helper_of": {"lab": lab, "pid": os.getpid()}}


def helper_owner(home: Path, name: str) -> HelperOwner | None:
    """Lab ``name``'s owner if it is a helper lab, else None (a lab of the user's, an unreadable state)."""
    try:
        owner = load_raw(home, name).get("helper_of")
    except LabError:
        return None
    if not isinstance(owner, dict) or not isinstance(owner.get("pid"), int) or not isinstance(owner.get("lab"), str):
        return None
    running = holder_pid(home, owner["lab"]) == owner["pid"]
    return HelperOwner(owner["lab"], owner["pid"], running)


def exists(home: Path, name: str) -> bool:
    return (state_dir(home, name) / STATE_FILE).is_file()


def list_labs(home: Path) -> list[str]:
    if not home.is_dir():
        return []
    return sorted(p.parent.name for p in home.glob(f"*/{STATE_FILE}"))


def lab_entries(directory: Path) -> tuple[list[Path], list[Path]]:
    """(what the lab made in ``directory``, everything else): a command removes only the first."""
    ours: list[Path] = []
    other: list[Path] = []
    for entry in sorted(directory.iterdir()) if directory.is_dir() else []:
        temp = entry.name.startswith(".") and entry.name[1:].rsplit(".", 1)[0] in LAB_ENTRIES  # write_secret's
        named = entry.name in LAB_ENTRIES or entry.name.startswith(".state-") or temp
        made = named and not entry.is_symlink() and entry.is_dir() == (entry.name in LAB_DIRS)
        (ours if made else other).append(entry)
    return ours, other


def remove(directory: Path, keep_data: bool = False) -> list[Path]:
    """Delete what a lab made in its directory, and the directory once empty; with ``keep_data`` only
    state.json goes (node dirs with data stay). Anything else (a file the user put there, a link) is
    left where it is and returned, so nothing the lab did not make is ever deleted."""
    if keep_data:
        (directory / KEPT).write_text("kept by `lab down --keep-data`: the next `lab up` of this name reuses it\n")
        (directory / STATE_FILE).unlink(missing_ok=True)
        return []
    ours, other = lab_entries(directory)
    for entry in ours:
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    if not other:
        with contextlib.suppress(OSError):
            directory.rmdir()
    return other
