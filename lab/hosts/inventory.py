"""An Ansible inventory as `lab deploy` reads it: ansible-inventory's own parse (INI, YAML, a directory
with group_vars; vaulted files decrypted with the user's vault password), so lab and Ansible never
disagree about which host is which.

Two groups place the six nodes, by their order: ``redis_ha_data`` (three hosts: redis-1, the initial
master, redis-2, redis-3) and ``redis_ha_sentinel`` (sentinel-1..3). A host may be in both.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab import ANSIBLE_DIR
from lab.errors import Unavailable, UsageError
from lab.spec import REDIS_NODES, SENTINEL_NODES

DATA_GROUP = "redis_ha_data"
SENTINEL_GROUP = "redis_ha_sentinel"


@dataclass(frozen=True)
class Inventory:
    path: Path
    hostvars: dict[str, dict[str, Any]]
    data: tuple[str, ...]
    sentinels: tuple[str, ...]

    def address(self, host: str) -> str:
        return str(self.hostvars.get(host, {}).get("ansible_host") or host)

    def node_hosts(self) -> dict[str, str]:
        """Node name -> the inventory host it runs on."""
        return dict(zip(REDIS_NODES, self.data, strict=True)) | dict(zip(SENTINEL_NODES, self.sentinels, strict=True))

    @property
    def hosts(self) -> list[str]:
        return list(dict.fromkeys(self.data + self.sentinels))

    def variables(self) -> dict[str, Any]:
        """The variables of the first data host (group_vars/all's reach every host)."""
        return self.hostvars.get(self.data[0], {})


def ansible_bin(name: str) -> str:
    """An ansible-core command: beside this Python (the venv's), else on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        raise Unavailable(f"{name} not found: install ansible-core (pip install 'redis-ha-lab[dev]' or ansible-core)")
    return found


def ansible_env(scratch: Path, vault_password_file: Path | None) -> dict[str, str]:
    """The environment of an Ansible command lab runs: the repository's ansible.cfg, an inventory that
    does not parse is an error (not a warning and an empty inventory), Ansible's own files and its SSH
    control sockets in ``scratch`` (removed after the run, see :func:`close_connections`: nothing is
    left in ~/.ansible)."""
    # Ansible's own log would take every task result, passwords included, into a file of the user's umask.
    env = {k: v for k, v in os.environ.items() if k not in ("ANSIBLE_LOG_PATH", "ANSIBLE_DEBUG")}
    env |= {
        "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"),
        "ANSIBLE_HOME": str(scratch / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(scratch / "ansible-tmp"),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir(scratch)),
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "1",
        "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "1",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "PYTHONWARNINGS": "ignore",
    }
    if vault_password_file is not None:
        env["ANSIBLE_VAULT_PASSWORD_FILE"] = str(vault_password_file.absolute())
    return env


def _members(doc: dict[str, Any], group: str, seen: frozenset[str] = frozenset()) -> list[str]:
    entry = doc.get(group) or {}
    found = list(entry.get("hosts") or [])
    for child in entry.get("children") or []:
        if child not in seen:
            found += _members(doc, child, seen | {group})
    return list(dict.fromkeys(found))


def control_dir(scratch: Path) -> Path:
    """Where a run's SSH control sockets go: the run's directory, or a short one of its own in /tmp when that
    path is too long for a socket (108 bytes, the socket's name included)."""
    if len(str(scratch / "cp")) <= 60:
        return scratch / "cp"
    digest = hashlib.sha1(str(scratch).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"lab-cp-{digest}"


def close_connections(scratch: Path) -> None:
    """End the SSH connections a run of Ansible left open (ControlPersist) in ``scratch``."""
    cp = control_dir(scratch)
    for sock in sorted(cp.glob("*")) if cp.is_dir() else []:
        argv = ["ssh", "-O", "exit", "-o", f"ControlPath={sock}", "lab-deploy"]
        subprocess.run(argv, capture_output=True, check=False)
    if cp.parent != scratch:
        shutil.rmtree(cp, ignore_errors=True)


def error_line(text: str) -> str:
    """Ansible's error, in one line (its first ERROR line, else its last line)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("ERROR!") or line.startswith("[ERROR]"):
            return line.split(":", 1)[-1].strip() if line.startswith("[ERROR]") else line[len("ERROR!") :].strip()
    return lines[-1] if lines else "(no output)"


def load(path: Path, vault_password_file: Path | None = None) -> Inventory:
    """Parse ``path`` with ansible-inventory; a parse error, a missing group or a group of the wrong
    size is one line (exit 2), before any host is contacted (and before anything is written)."""
    if not path.exists():
        raise UsageError(f"inventory {path}: no such file or directory")
    if vault_password_file is not None and not vault_password_file.is_file():
        raise UsageError(f"--vault-password-file {vault_password_file}: no such file")
    with tempfile.TemporaryDirectory(prefix="lab-inventory-") as scratch:  # (Ansible's own files: none kept)
        done = subprocess.run(
            [ansible_bin("ansible-inventory"), "-i", str(path), "--list"],
            env=ansible_env(Path(scratch), vault_password_file),
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        raise UsageError(f"inventory {path}: {error_line(done.stderr or done.stdout)}")
    try:
        doc = json.loads(done.stdout)
    except ValueError:
        raise UsageError(f"inventory {path}: ansible-inventory printed no inventory") from None
    hostvars = (doc.get("_meta") or {}).get("hostvars") or {}
    groups: dict[str, tuple[str, ...]] = {}
    for group in (DATA_GROUP, SENTINEL_GROUP):
        members = _members(doc, group)
        if len(members) != 3:
            raise UsageError(
                f"inventory {path}: group {group} has {len(members)} hosts: give 3 "
                f"({'the first runs redis-1, the initial master' if group == DATA_GROUP else 'sentinel-1..3'})"
            )
        groups[group] = tuple(members)
    inv = Inventory(path, hostvars, groups[DATA_GROUP], groups[SENTINEL_GROUP])
    for kind, placed in (("data", inv.data), ("Sentinel", inv.sentinels)):
        addresses = [inv.address(h) for h in placed]
        if len(set(addresses)) != len(addresses):
            raise UsageError(f"inventory {path}: two {kind} hosts have one address ({', '.join(addresses)})")
    return inv
