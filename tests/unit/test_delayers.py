"""Which processes are a lab's delayers (lab.delayers): only a Python running the module for that lab's state
file; a process that merely names both (a grep, an editor) is never signalled. Real processes, no lab."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from lab import delayers
from lab.waits import wait_for
from tests.helpers import make_spec


def exec_done(pid: int, text: str) -> Callable[[], tuple[bool, None]]:
    return lambda: (text in Path(f"/proc/{pid}/cmdline").read_text(), None)


def test_only_the_labs_own_delayers_are_found_and_stopped(tmp_path: Path) -> None:
    spec = make_spec(tmp_path)
    state = str(delayers.state_file(spec))
    sleep = "import time; time.sleep(30)"
    decoy = subprocess.Popen([sys.executable, "-c", sleep, "-m", "lab.delayer", "lab.delayer", state])
    other = subprocess.Popen([sys.executable, "-c", sleep, "-m", "lab.delayer", "--state", f"{state}.other"])
    ours = subprocess.Popen([sys.executable, "-c", sleep, "-m", "lab.delayer", "--state", state])
    try:
        for proc in (decoy, other, ours):  # (until exec, a child's command line is its parent's: a loaded CI saw it)
            wait_for(exec_done(proc.pid, sleep), what="the child to exec", timeout=10, interval=0.01)
        assert delayers.running(spec) == [ours.pid]
        assert not delayers.stop(spec, decoy.pid) and decoy.poll() is None
        assert delayers.stop_all(spec) == [ours.pid] and ours.wait(timeout=5) is not None
        assert other.poll() is None  # another lab's
    finally:
        for proc in (decoy, other, ours):
            proc.kill()
            proc.wait()
