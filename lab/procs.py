"""Local processes of a lab, identified the way scripts/common_env.sh identifies them: a pid is a
node's only if it is a live process of the server binary the lab started for that node (the same file,
whatever it is called: by its path, or by the device and inode the lab recorded when it chose it, so a
binary renamed or deleted since still counts) working in that node's directory, and the file it executes
says it is a Redis or Valkey server (its own ``--version``, once per binary). A recycled pid, the pid of
another lab copied into this lab's pidfile, or any process that is no server is never ours and never
signalled."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from lab.servers import server_exe

DELETED = " (deleted)"


@dataclass(frozen=True)
class Binary:
    """A node's server binary as the lab recorded it: its path and, when recorded, the (device, inode) of the
    file that path named then (older labs recorded only the path)."""

    path: Path
    ident: tuple[int, int] | None = None


def _binary(binary: Path | Binary) -> Binary:
    return binary if isinstance(binary, Binary) else Binary(Path(binary))


def state_letter(pid: int) -> str:
    """R/S/D/T/Z... from /proc; '' when the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _link(pid: int, what: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/{what}").removesuffix(DELETED)
    except OSError:
        return ""


def runs(pid: int, binary: Path | Binary) -> bool:
    """``pid`` executes ``binary``, whatever either is called: the file the lab recorded (its device and
    inode, even if renamed or deleted since), the file its path names now (a symlink, a hard link or a
    copy's own name all count), or, once that file was replaced or removed (a package upgrade under a
    running lab), the path it was started from."""
    recorded = _binary(binary)
    binary = recorded.path
    try:
        exe = os.stat(f"/proc/{pid}/exe")
    except OSError:
        return False
    if recorded.ident is not None and (exe.st_dev, exe.st_ino) == recorded.ident:
        return True
    try:
        wanted = os.stat(binary)
    except OSError:
        pass
    else:
        if (exe.st_dev, exe.st_ino) == (wanted.st_dev, wanted.st_ino):
            return True
    try:
        link = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return False
    return link.endswith(DELETED) and link.removesuffix(DELETED) == os.path.realpath(binary)


def is_server(pid: int, binary: Path | Binary) -> bool:
    """A live (not zombie) process of the server ``binary`` that is a Redis or Valkey server (what a lab
    recorded is checked against what the process runs: a recorded path that names a `sleep` never makes
    the `sleep` a node)."""
    return state_letter(pid) not in ("", "Z", "X") and runs(pid, binary) and server_exe(pid)


def exe_path(pid: int) -> str:
    """The path ``pid`` was started from (without " (deleted)"), or ''."""
    return _link(pid, "exe")


def workdir(pid: int) -> Path | None:
    cwd = _link(pid, "cwd")
    return Path(cwd) if cwd else None


def node_pid(pidfile: Path, node_dir: Path, binary: Path | Binary) -> tuple[int | None, str]:
    """(pid, state letter) of the node's server (``binary`` working in ``node_dir``), or (None, '') when
    the pidfile names no process of ours."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None, ""
    if not is_server(pid, binary) or workdir(pid) != node_dir.resolve():
        return None, ""
    return pid, state_letter(pid)


def servers_under(root: Path, binaries: Iterable[Path | Binary] | None = None) -> list[int]:
    """Every live process of one of ``binaries`` (a lab's: :func:`lab.backends.local.binaries`; default:
    every build `lab servers` finds here) working inside ``root`` (a lab directory), pidfile or not."""
    if binaries is None:
        from lab.servers import discover

        binaries = [build.server_bin for build in discover()]
    wanted = list(binaries)
    root = root.resolve()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        cwd = workdir(pid)
        if cwd is not None and (cwd == root or root in cwd.parents) and any(is_server(pid, b) for b in wanted):
            found.append(pid)
    return found


def unknown_servers_under(root: Path, known: Iterable[int] = ()) -> list[int]:
    """Every live Redis or Valkey server process working inside ``root`` but ``known`` ones, whatever binary it
    runs (its own ``--version`` says): what `lab down` checks is gone before it calls a lab down."""
    skip = set(known)
    return [pid for pid in processes_under(root) if pid not in skip and server_exe(pid)]


def processes_under(root: Path) -> list[int]:
    """Every live process working inside ``root``, whatever it runs (for a lab whose state is lost:
    which of them are servers is for their own ``--version`` to say)."""
    root = root.resolve()
    found = []
    for entry in Path("/proc").iterdir():
        pid = int(entry.name) if entry.name.isdigit() else 0
        inside = pid and (cwd := workdir(pid)) is not None and (cwd == root or root in cwd.parents)
        if inside and state_letter(pid) not in ("", "Z", "X"):
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
