"""Local processes of a lab, identified the way scripts/common_env.sh identifies them: a pid is a
node's only if it is a live redis/valkey server working in that node's directory. A recycled pid,
or the pid of another lab copied into this lab's pidfile, is never ours and never signalled."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

SERVER_NAMES = ("redis-", "valkey-")


def state_letter(pid: int) -> str:
    """R/S/D/T/Z... from /proc; '' when the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _link(pid: int, what: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/{what}").removesuffix(" (deleted)")
    except OSError:
        return ""


def is_server(pid: int) -> bool:
    """A live (not zombie) redis/valkey server process."""
    return state_letter(pid) not in ("", "Z", "X") and Path(_link(pid, "exe")).name.startswith(SERVER_NAMES)


def workdir(pid: int) -> Path | None:
    cwd = _link(pid, "cwd")
    return Path(cwd) if cwd else None


def node_pid(pidfile: Path, node_dir: Path) -> tuple[int | None, str]:
    """(pid, state letter) of the node's server, or (None, '') when the pidfile names no process of ours."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None, ""
    if not is_server(pid) or workdir(pid) != node_dir.resolve():
        return None, ""
    return pid, state_letter(pid)


def servers_under(root: Path) -> list[int]:
    """Every redis/valkey server working inside ``root`` (a lab directory), pidfile or not."""
    root = root.resolve()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        cwd = workdir(pid)
        if cwd is not None and (cwd == root or root in cwd.parents) and is_server(pid):
            found.append(pid)
    return found


def exited(pid: int) -> bool:
    """Gone, or a zombie none of whose threads still runs. A killed server's main thread turns zombie
    while its other threads are still exiting, and they hold its sockets: a restart on the same port
    then fails with "Address already in use" (seen in CI: Redis 6.2, restarted right after SIGKILL)."""
    letter = state_letter(pid)
    if letter != "Z":
        return letter in ("", "X")
    try:
        return len(os.listdir(f"/proc/{pid}/task")) <= 1
    except OSError:
        return True


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not exited(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)
    return True


def terminate(pids: list[int], grace: float = 5.0) -> None:
    """SIGTERM (thawing first), then SIGKILL whatever is still there after ``grace`` seconds."""
    for pid in pids:
        for sig in (signal.SIGCONT, signal.SIGTERM):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
    for pid in pids:
        if not wait_gone(pid, grace):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            wait_gone(pid, grace)
