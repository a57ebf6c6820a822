"""The lab's delayer processes (lab.delayer): started for a degraded or flapping link, known by their
command line (``-m lab.delayer`` and the lab's own state file), stopped by ``lab heal`` and ``lab down``.

A delayer also ends by itself once the lab's state no longer records it, so one that a killed command
started and never recorded is gone within its grace period even if no lab command runs again."""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from lab.errors import LabError
from lab.home import DELAYER_LOG, STATE_FILE
from lab.spec import LabSpec

MODULE = "lab.delayer"
READY_S = 10.0


def state_file(spec: LabSpec) -> Path:
    return spec.base_dir / STATE_FILE


def start(spec: LabSpec, args: list[str], prefix: list[str]) -> tuple[int, int]:
    """Start a delayer (``prefix``: how to enter the packets' network namespace); its pid and queue."""
    command = [*prefix, sys.executable, "-m", MODULE, *args, "--state", str(state_file(spec))]
    log = spec.base_dir / DELAYER_LOG
    try:  # (never through a link planted in the lab's directory)
        err = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise LabError(f"cannot write {log}: {exc.strerror}") from None
    try:
        proc = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True
        )
    finally:
        os.close(err)
    assert proc.stdout is not None
    deadline = time.monotonic() + READY_S
    line = b""
    # (it prints one line, then closes its end; one that hangs before it, in nsenter or at its start, is
    # given up on at the deadline instead of holding the lab's lock for ever)
    while not line and (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            line = proc.stdout.readline()
            if not line:
                break
    proc.stdout.close()
    words = line.decode(errors="replace").split()
    if len(words) == 2 and words[0] == "queue" and words[1].isdigit():
        return proc.pid, int(words[1])
    stop(spec, proc.pid)
    proc.wait()
    why = " ".join(words[1:]) if words[:1] == ["error"] else f"it said {line!r}"
    raise LabError(f"the packet delayer could not start: {why} (log: {log})")


def _ours(spec: LabSpec, pid: int) -> bool:
    """``pid`` is a delayer of this lab: a Python running ``-m lab.delayer ... --state <the lab's state file>``
    (a ``grep lab.delayer .../state.json`` names both too, and is never signalled)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    pairs = set(itertools.pairwise(argv))
    python = Path(argv[0].decode(errors="replace")).name.startswith("python")
    return python and (b"-m", MODULE.encode()) in pairs and (b"--state", str(state_file(spec)).encode()) in pairs


def running(spec: LabSpec) -> list[int]:
    """Every delayer of this lab that runs now."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _ours(spec, int(entry.name)):
            pids.append(int(entry.name))
    return sorted(pids)


def stop(spec: LabSpec, pid: int, within: float = 3.0) -> bool:
    """Stop one of the lab's delayers (it lets go of what it holds); False if it was not running."""
    if not _ours(spec, pid):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and _ours(spec, pid):
        _reap(pid)
        time.sleep(0.02)
    if _ours(spec, pid):
        with contextlib.suppress(ProcessLookupError):  # (it ended meanwhile)
            os.kill(pid, signal.SIGKILL)
        _reap(pid)
    return True


def _reap(pid: int) -> None:
    """Collect the delayer if it is this process's child (started by this very command)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop_all(spec: LabSpec) -> list[int]:
    """Stop every delayer of the lab (heal, down): those recorded and any a killed command left."""
    return [pid for pid in running(spec) if stop(spec, pid)]
