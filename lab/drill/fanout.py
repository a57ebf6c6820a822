"""`lab clients --parallel N`: the matrix's cells on N labs at once: the named lab and N-1 helper labs
built like it (NAME-2 ... NAME-N: its profile, backend, server builds and TLS), each cell a `lab clients`
child process on one of them. A child is a whole command: it heals its lab before its cell and undoes
its own faults on Ctrl-C or SIGTERM, which this command passes on to it; it dies with this command
(PR_SET_PDEATHSIG), so a kill -9 here leaves no cell running. This command holds every lab's lock for
the whole run (a child takes its lab as held for it: lab.lock.PARENT_HOLDS) and removes the helpers it
started at the end or on an interrupt. A kill -9 leaves them running, marked with this run's pid: the
next run uses and removes them (`lab list` names them). A lab of a helper's name that is no helper of
this lab is refused before anything is touched.

Cells that share the cores contend with each other: docs/clients.md says what that costs in accuracy."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from lab import control, interrupts, state
from lab.drill.matrix import Cell, progress_line, run_about, write_matrix
from lab.errors import LabError, UsageError
from lab.home import validate_name
from lab.lock import PARENT_HOLDS, lab_lock
from lab.spec import LabSpec

#: Most labs at once: a lab is six servers and a client process or two; past the cores they only wait.
MAX_PARALLEL = 8
#: How long an interrupted child may take to undo its fault and heal its lab.
CHILD_UNDO_S = 120.0
#: Where the children write their cells before they are moved into the matrix's tree.
SCRATCH = ".cells"


@dataclass(frozen=True)
class Unit:
    """One run of one cell, and its place in the matrix's order."""

    index: int
    scenario: str
    client: str
    setting: str
    run: int


def units(clients: list[str], scenarios: list[str], settings: list[str], repeat: int) -> list[Unit]:
    """In run_matrix's order: scenario, client, settings, run."""
    order = [(s, c, t, r) for s in scenarios for c in clients for t in settings for r in range(1, repeat + 1)]
    return [Unit(i, s, c, t, r) for i, (s, c, t, r) in enumerate(order)]


def helper_names(name: str, parallel: int) -> list[str]:
    """The helper labs' names; a UsageError when the lab's name leaves no room for the suffix."""
    names = [f"{name}-{k}" for k in range(2, parallel + 1)]
    for helper in names:
        try:
            validate_name(helper)
        except UsageError:
            raise UsageError(
                f"--parallel {parallel}: the helper lab {helper!r} would need a name over 40 characters: "
                "use a shorter --name"
            ) from None
    return names


def check_helpers(home: Path, name: str, parallel: int) -> None:
    """Before anything is touched: a lab that has a helper's name must be a helper of this lab that a killed
    run left (used, then removed); cells are never run on a lab of the user's that happens to have the name."""
    for helper in helper_names(name, parallel):
        if not state.exists(home, helper):
            continue
        owner = state.helper_owner(home, helper)
        if owner is None or owner.lab != name:
            raise UsageError(
                f"--parallel {parallel}: lab {helper} exists and is not a helper of lab {name}: its cells would "
                "run on it; remove it (`lab down --name " + helper + "`) or use another --name"
            )
        if owner.running:
            raise LabError(f"lab {helper} is the helper of a `lab clients --parallel` under way (pid {owner.pid})")


def child_argv(home: Path, lab: str, unit: Unit, directory: Path) -> list[str]:
    """The `lab clients` command that runs ``unit`` on ``lab`` into ``directory``."""
    return [
        *(sys.executable, "-m", "lab", "--home", str(home), "clients", "--name", lab),
        *("--clients", unit.client, "--scenarios", unit.scenario, "--settings", unit.setting),
        *("--report", str(directory)),
    ]


def placed(cell: Cell, unit: Unit, report_dir: Path, repeat: int) -> tuple[Cell, Path]:
    """The cell as the matrix has it (its run, its report where a serial matrix puts it), and where its
    report directory goes."""
    destination = report_dir / unit.scenario / f"{unit.client}-{unit.setting}"
    if repeat > 1:
        destination /= f"run-{unit.run}"
    report = str(destination / "report.html") if cell.report else ""
    return replace(cell, run=unit.run, report=report), destination


def run_parallel(
    spec: LabSpec,
    home: Path,
    clients: list[str],
    scenarios: list[str],
    settings: list[str],
    report_dir: Path,
    parallel: int,
    progress: Callable[[str], None] = print,
    repeat: int = 1,
) -> list[Cell]:
    """Every cell ``repeat`` times, on ``parallel`` labs; writes the matrix like run_matrix."""
    names = helper_names(spec.name, parallel)
    started_at = time.perf_counter()
    started: list[str] = []
    with contextlib.ExitStack() as locks:
        # The lab's lock first, for the whole run: it tells whose helpers are under way (state.helper_owner).
        locks.enter_context(lab_lock(home, spec.name, "clients --parallel"))
        try:
            _start_helpers(spec, home, names, started, progress)
            for lab in names:
                locks.enter_context(lab_lock(home, lab, "clients --parallel"))
            cells = _Fanout(home, report_dir, repeat, progress).run(
                [spec.name, *names], units(clients, scenarios, settings, repeat)
            )
        finally:
            for helper in started:
                if not interrupts.pending():  # (an interrupt's undo log removes them, and says so)
                    control.down(helper, home)
                    interrupts.done(f"helper lab {helper}")
                    interrupts.done(f"new lab {helper}")
    write_matrix(cells, report_dir, {**run_about(spec, started_at), "labs": parallel})
    return cells


def _start_helpers(
    spec: LabSpec, home: Path, names: list[str], ours: list[str], progress: Callable[[str], None]
) -> None:
    """Start the helper labs that do not run yet (each removed again on an interrupt), adding each to
    ``ours`` (this run's to remove at its end, a failure included) as it is started or taken over from a
    killed run."""
    builds = [f"{node}={binary}" for node, binary in spec.servers.items()]
    check_helpers(home, spec.name, len(names) + 1)  # (again, now under the lab's lock: the CLI's was early)
    for name in names:
        interrupts.undo_on_interrupt(f"helper lab {name}", functools.partial(_remove, home, name))
        if (owner := state.helper_owner(home, name)) is not None:  # (check_helpers: one a killed run left)
            progress(f"lab {name}, a helper that a killed run (pid {owner.pid}) left, is used and removed at the end")
        else:
            interrupts.new_lab(home, name)
            up = control.up(name, spec.profile, spec.backend, home, server=builds, tls=spec.tls)
            interrupts.done(f"new lab {name}")  # (from now on, the undo above removes it, and says so)
            progress(f"lab {name} is healthy after {up.seconds:.2f}s (a helper lab for --parallel)")
        ours.append(name)
        state.record(state.load(home, name), **state.helper_of(spec.name))


def _remove(home: Path, name: str) -> str | None:
    return f"removed the helper lab {name}" if control.down(name, home) is not None else None


class _Fanout:
    """Workers, one per lab, each taking the next unit and running it as a child process."""

    def __init__(self, home: Path, report_dir: Path, repeat: int, progress: Callable[[str], None]) -> None:
        self.home, self.report_dir, self.repeat, self.progress = home, report_dir, repeat, progress
        self.scratch = report_dir / SCRATCH
        self.todo: queue.SimpleQueue[Unit] = queue.SimpleQueue()
        self.cells: dict[int, Cell] = {}
        self.failure: str | None = None
        self.stop = threading.Event()
        self.children: set[subprocess.Popen[str]] = set()
        self.lock = threading.Lock()

    def run(self, labs: list[str], todo: list[Unit]) -> list[Cell]:
        for unit in todo:
            self.todo.put(unit)
        # (made before the children start: each removes only its own on an interrupt, and this command the rest)
        self.scratch.mkdir(parents=True, exist_ok=True)
        interrupts.undo_on_interrupt("cells under way", self._stop_children)
        workers = [threading.Thread(target=self._work, args=(lab,), daemon=True) for lab in labs]
        for worker in workers:
            worker.start()
        for worker in workers:
            while worker.is_alive():
                worker.join(0.2)
                interrupts.checkpoint()
        interrupts.done("cells under way")
        shutil.rmtree(self.scratch, ignore_errors=True)
        if self.failure is not None:
            raise LabError(self.failure)
        return [self.cells[i] for i in sorted(self.cells)]

    def _work(self, lab: str) -> None:
        while not self.stop.is_set():
            try:
                unit = self.todo.get_nowait()
            except queue.Empty:
                return
            try:
                self._run(lab, unit)
            except Exception as exc:  # (a worker thread's error would otherwise vanish: a cell missing, said nowhere)
                self.failure = self.failure or f"the {unit.scenario} cell of {unit.client} on lab {lab}: {exc}"
                self.stop.set()

    def _run(self, lab: str, unit: Unit) -> None:
        directory = self.scratch / str(unit.index)
        env = {**os.environ, PARENT_HOLDS: str(os.getpid()), interrupts.DIE_WITH_PARENT: str(os.getpid())}
        with self.lock:
            if self.stop.is_set():
                return
            child = subprocess.Popen(
                child_argv(self.home, lab, unit, directory),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            self.children.add(child)
        _, errors = child.communicate()
        with self.lock:
            self.children.discard(child)
        if child.returncode != 0:
            if not self.stop.is_set():
                tail = "\n".join(errors.strip().splitlines()[-8:])
                self.failure = (
                    f"the {unit.scenario} cell of {unit.client} ({unit.setting}) on lab {lab} failed:\n{tail}"
                )
                self.stop.set()
            return
        doc = json.loads((directory / "matrix.json").read_text())
        cell, destination = placed(Cell(**doc["cells"][0]), unit, self.report_dir, self.repeat)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(directory / unit.scenario / f"{unit.client}-{unit.setting}", destination)
        shutil.rmtree(directory, ignore_errors=True)
        with self.lock:
            self.cells[unit.index] = cell
        self.progress(f"{progress_line(cell, self.repeat)} (lab {lab})")

    def _stop_children(self) -> str | None:
        """An interrupt: no new cell; each running one gets SIGTERM, undoes its fault and ends."""
        with self.lock:
            self.stop.set()
            children = list(self.children)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + CHILD_UNDO_S
        for child in children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(max(0.1, deadline - time.monotonic()))
        stuck = [child for child in children if child.poll() is None]
        for child in stuck:
            child.kill()
        if not children:
            return None
        cells = f"{len(children)} cell{'s' if len(children) > 1 else ''} under way"
        if stuck:
            return f"stopped {cells}; {len(stuck)} did not end in {CHILD_UNDO_S:g}s: killed"
        return f"stopped {cells} (each undid its own fault)"
