"""One lock per lab, held by every command that changes it (up, down, faults, heal, failover).

An ``flock`` on ``<home>/.locks/<name>.lock``: the kernel drops it when the holder dies, so a crashed
command never leaves a lab locked. The holder writes its pid and command into the file, so a second
command can say who it waited for. Re-entrant within a process (``up`` heals, ``heal`` reverts...).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabBusy, LabError, UsageError
from lab.home import lock_path

DEFAULT_TIMEOUT = 30.0
MAX_TIMEOUT = 86400.0
#: Set, to its own pid, by a command for the child commands it runs on labs whose locks it holds (lab
#: clients --parallel): a child of that pid takes such a lab as locked for it.
PARENT_HOLDS = "LAB_LOCKS_HELD_BY"


def env_timeout() -> float:
    """LAB_LOCK_TIMEOUT (seconds, 0 to a day; default 30), read when a lock is taken so that a bad value
    is one usage error of the command that needs it, not a traceback of every command."""
    text = os.environ.get("LAB_LOCK_TIMEOUT", "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value <= MAX_TIMEOUT:  # also refuses nan and inf
        raise UsageError(f"LAB_LOCK_TIMEOUT={text!r}: give seconds from 0 to {MAX_TIMEOUT:g}")
    return value


@dataclass
class _Held:
    fd: int
    owner: int  # thread ident
    depth: int = 0


_REGISTRY: dict[Path, _Held] = {}
_REGISTRY_LOCK = threading.Lock()


def _holder(path: Path) -> str:
    try:
        pid, _, command = path.read_text().strip().partition(" ")
    except OSError:
        return "unknown holder"
    return f"pid {pid or '?'}, command {command or '?'}"


def holder_pid(home: Path, name: str) -> int | None:
    """The pid of the process that holds lab ``name``'s lock now, or None when nobody does. Exact where a
    pid alone is not (a recycled pid): the kernel drops the lock when its holder dies."""
    path = lock_path(home, name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _holder(path).removeprefix("pid ").partition(",")[0]
            return int(pid) if pid.isdigit() else None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _held_for_me(path: Path) -> bool:
    """The lock is held by the command that started this process, for it (PARENT_HOLDS)."""
    holder = os.environ.get(PARENT_HOLDS, "")
    if not holder or holder != str(os.getppid()):
        return False
    return _holder(path).startswith(f"pid {holder},")


def _open(path: Path) -> int:
    """The lock file, never through a link: a lock file or a ``.locks`` that is a symbolic link (to a
    file the user cares about, to a directory outside the home) is refused, not truncated or written."""
    locks = path.parent
    try:
        locks.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            locks.mkdir(mode=0o700)
        if locks.is_symlink() or not locks.is_dir():
            raise UsageError(f"{locks} is not a directory of the lab home (a link or a file): remove it by hand")
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UsageError(f"{path} is a symbolic link, not a lab's lock file: remove it by hand") from None
        raise LabError(f"cannot use the lab home {locks.parent}: {exc.strerror}") from None


@contextmanager
def lab_lock(home: Path, name: str, command: str, timeout: float | None = None) -> Iterator[None]:
    """Hold lab ``name``'s lock for the block; wait up to ``timeout`` s, then raise :class:`LabBusy`."""
    path = lock_path(home, name)
    me = threading.get_ident()
    with _REGISTRY_LOCK:
        held = _REGISTRY.get(path)
        if held is not None and held.owner == me:
            held.depth += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            held.depth -= 1  # type: ignore[union-attr]
        return
    if _held_for_me(path):
        yield
        return
    wait = env_timeout() if timeout is None else timeout
    deadline = time.monotonic() + wait
    fd = _open(path)
    try:
        while True:
            with _REGISTRY_LOCK:
                other = _REGISTRY.get(path)  # another thread of this process holds it
            if other is None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    pass
            if time.monotonic() >= deadline:
                raise LabBusy(f"lab {name} is busy ({_holder(path)}); waited {wait:g}s")
            time.sleep(0.02)
        with _REGISTRY_LOCK:
            _REGISTRY[path] = _Held(fd, me, depth=1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {command}\n".encode(), 0)
        try:
            yield
        finally:
            with _REGISTRY_LOCK:
                del _REGISTRY[path]
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
