"""The gate for names and paths: every command resolves a lab through here before it touches anything.

A lab is ``<home>/<name>``: ``name`` is one path component of a-z 0-9 _ - (so never ``..`` or a
``/``), the directory must be a real directory, not a symbolic link, and after resolving every link
it must still sit directly in the home. A command therefore never reads, locks or removes anything
but a lab of the home it was given. Bad input raises :class:`~lab.errors.UsageError` (exit 2).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from lab.errors import UsageError

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
LOCKS = ".locks"
#: The file that makes a directory of the home a lab (lab.state writes it).
STATE_FILE = "state.json"
#: What the lab's packet delayers (lab.delayer) say when they fail, in the lab's directory.
DELAYER_LOG = "delayer.log"
#: Pseudo filesystems: nothing a command writes belongs there.
SYSTEM_TREES = (Path("/dev"), Path("/proc"), Path("/sys"))


def validate_name(name: str) -> str:
    """A lab name: one path component of 1-40 of a-z 0-9 _ -, starting with a letter or digit."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise UsageError(f"lab name {name!r}: use 1-40 of a-z 0-9 _ - (starting with a letter or digit)")
    return name


def check_path_text(path: Path) -> None:
    """Paths are written quoted into the configs ("/a b/c" is fine); a quote, a backslash or a
    control character would need escapes that Redis and Ansible read differently."""
    text = str(path)
    if any(c in text for c in '"\\') or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise UsageError(
            f"{text!r}: a lab or node path may not hold a double quote, a backslash or a control character"
        )


def check_home(home: Path) -> Path:
    """An absolute lab home that is usable as one: not a file, no characters the configs cannot
    quote. Checked before anything is created, so a refused home is never made."""
    home = Path(os.path.abspath(home))
    check_path_text(home)
    if home.exists() and not home.is_dir():
        raise UsageError(f"lab home {home} is not a directory")
    for parent in home.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UsageError(f"lab home {home}: {parent} is not a directory")
            break
    return home


def lab_dir(home: Path, name: str) -> Path:
    """``<home>/<name>`` for a valid name, refused when it is a link or resolves outside the home."""
    validate_name(name)
    directory = home / name
    if directory.is_symlink():
        raise UsageError(f"{directory} is a symbolic link, not a lab directory: remove it by hand if it is stale")
    if directory.exists() and directory.resolve().parent != home.resolve():
        raise UsageError(f"{directory} resolves outside the lab home {home}")
    return directory


def lock_path(home: Path, name: str) -> Path:
    """The lab's lock file: ``<home>/.locks/<name>.lock`` (never outside the home)."""
    return home / LOCKS / f"{validate_name(name)}.lock"


def inside(path: Path, root: Path) -> bool:
    """``path`` is ``root`` or below it, after resolving links."""
    path, root = path.resolve(), root.resolve()
    return path == root or root in path.parents


def claimed(path: Path, home: Path, lab: str | None = None) -> str | None:
    """What ``path`` (to be written by a command: a report, a JUnit file) would overwrite or mix into, or
    None: the lab home itself, its locks, a lab's own directory (``lab``'s too, before it exists: the command
    may start it there, and an interrupt that removes the unfinished report would empty the lab), or a
    pseudo filesystem."""
    target = Path(os.path.abspath(path))
    for tree in SYSTEM_TREES:
        if inside(target, tree):
            return f"{tree} is a system tree"
    if target.resolve() == home.resolve():
        return "that is the lab home"
    if inside(target, home):
        first = target.resolve().relative_to(home.resolve()).parts[0]
        if first == LOCKS:
            return "that is the lab home's locks"
        if (home / first / STATE_FILE).exists() or first == lab:
            return f"that is inside lab {first}'s directory"
    return None
