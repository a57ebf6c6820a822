"""Files that hold a secret: created 0600 from the start, read back stripped."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def read_secret(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def write_secret(path: Path, value: str) -> None:
    """Write a secret file created 0600 from the start (never briefly world-readable), by a rename: a
    symbolic link at ``path`` is replaced, never followed (its target is not overwritten)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # created 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(value + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
