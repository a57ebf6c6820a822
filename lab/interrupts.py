"""Ctrl-C and SIGTERM while a command changes a lab: undo what it injected, say what was undone.

One mechanism for every command (lab.cli runs each one inside :func:`command`):

- :func:`command` turns SIGTERM into :class:`~lab.errors.Interrupted` for the whole command (SIGINT
  raises KeyboardInterrupt, of which Interrupted is a kind), and holds the command's undo log.
- A step that changes a lab registers in that log, *before* it acts, how to undo it
  (:func:`undo_on_interrupt`: a callable that reverts the change and returns what it did, or None
  when there was nothing to undo), and takes the entry out once it has undone the change itself
  (:func:`done`). What an interrupt deliberately leaves (a killed node, recorded for ``lab heal``; a
  lab a drill started) is a note (:func:`leave`); :func:`explain` adds a callable that looks at the
  lab when the interrupt comes and says what a step had undone or left by itself (a new lab that
  ``up`` rolled back).
- On an interrupt, :func:`command` runs the pending undos, newest first, with both signals ignored
  (:func:`shielded`), and raises Interrupted whose message names what was undone, what could not be,
  and what was left. Outside a command (a library caller, pytest) the log is not kept.

Two helpers for the steps themselves:

- :func:`uninterrupted` runs a step (a lifecycle script, a compose call) in a worker thread: an
  interrupt in the main thread waits for the step instead of killing it halfway, which would leave
  a server that no pidfile names.
- :func:`shielded` ignores both signals while a rollback runs; :func:`interruptible` turns SIGTERM
  into Interrupted for a block of library code run outside :func:`command`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Literal, TypeVar

from lab.errors import Interrupted

T = TypeVar("T")
SIGNALS = (signal.SIGINT, signal.SIGTERM)
Outcome = tuple[Literal["undone", "left"], str]


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


#: The signal that interrupted the command under way, until the command has handled it: Python swallows an
#: exception raised inside a weakref callback or a finaliser ("Exception ignored in: ..."; seen in CI when
#: SIGINT hit an import's module-lock callback), so :func:`checkpoint` raises it again where it is safe.
_PENDING: int | None = None


def _raise_interrupted(signum: int, _frame: FrameType | None) -> None:
    global _PENDING
    _PENDING = signum
    raise Interrupted(signum, f"interrupted by {signal.Signals(signum).name}")


def pending() -> bool:
    """An interrupt arrived and the command under way has not finished handling it."""
    return _PENDING is not None


#: Set for a child process that must end when the command that started it does (lab clients --parallel).
DIE_WITH_PARENT = "LAB_DIE_WITH_PARENT"


def die_with_parent() -> None:
    """In a child started with DIE_WITH_PARENT: SIGTERM when the parent dies (PR_SET_PDEATHSIG; a kill -9
    of it included), as if the user had stopped it; at once if the parent is gone already."""
    parent = os.environ.pop(DIE_WITH_PARENT, None)
    if parent is None or not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != int(parent):
        os.kill(os.getpid(), signal.SIGTERM)


def checkpoint() -> None:
    """Raise the interrupt again if it arrived and was swallowed (waits call this on every round)."""
    if _PENDING is not None and _LOG is not None and _main_thread():
        raise Interrupted(_PENDING, f"interrupted by {signal.Signals(_PENDING).name}")


@dataclass
class UndoLog:
    """What the command under way must undo if it is interrupted, in the order it was registered."""

    undos: dict[str, Callable[[], str | None]] = field(default_factory=dict)
    notes: dict[str, Callable[[], Outcome | list[Outcome] | None]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: undos already run on the interrupt's way out (:func:`undo_now`): what they did, what failed
    undone: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def run(self, key: str, undo: Callable[[], str | None]) -> None:
        try:
            what = undo()
        except Exception as exc:  # one failed undo must not stop the others
            self.failed.append(f"{key}: {(str(exc).splitlines() or [type(exc).__name__])[0]}")
            return
        if what:
            self.undone.append(what)

    def unwind(self) -> tuple[list[str], list[str], list[str]]:
        """Run every pending undo (newest first) and read every note: (undone, failed, left)."""
        left: list[str] = []
        with self.lock:
            undos, self.undos = list(self.undos.items()), {}
        for key, undo in reversed(undos):
            self.run(key, undo)
        with self.lock:  # (after the undos: one that removed a lab drops the notes about it, forget_since)
            notes = list(self.notes.values())
        undone, failed = self.undone, self.failed
        for note in notes:
            try:
                outcome = note()
            except Exception as exc:
                left.append(f"(could not tell: {exc})")
                continue
            for kind, text in [outcome] if isinstance(outcome, tuple) else outcome or []:
                (undone if kind == "undone" else left).append(text)
        return undone, failed, left


_LOG: UndoLog | None = None


def undo_on_interrupt(key: str, undo: Callable[[], str | None]) -> None:
    """Register, before acting, how to undo a change if the command is interrupted. ``undo`` returns
    what it did ("thawed redis-1"), or None when it found nothing to undo. ``key`` names the change
    in :func:`done` and, should the undo fail, in the message ("freeze redis-1")."""
    log = _LOG
    if log is not None:
        with log.lock:
            log.undos[key] = undo


def leave(key: str, text: str) -> None:
    """A change an interrupt leaves in place on purpose, and how to undo it by hand."""
    explain(key, lambda: ("left", text))


def explain(key: str, look: Callable[[], Outcome | list[Outcome] | None]) -> None:
    """``look`` runs when the interrupt comes (after the undos) and says what a step undid or left."""
    log = _LOG
    if log is not None:
        with log.lock:
            log.notes[key] = look


def new_lab(home: Path, name: str) -> None:
    """About to start lab ``name`` (none exists): an interrupt says whether it was removed again
    (lab.control rolls back a new lab that did not become healthy) or is left running."""
    from lab import state

    def look() -> Outcome:
        if not state.exists(home, name):
            kept = state.state_dir(home, name).exists()
            kept_text = " (the data an earlier `down --keep-data` kept stays)" if kept else ""
            return "undone", f"stopped the new lab {name}'s processes and removed its files{kept_text}"
        return "left", f"lab {name}, new and healthy, is running (`lab down --name {name}` stops it)"

    explain(f"new lab {name}", look)


def undo_now(key: str) -> bool:
    """On an interrupt's way out, a step that cannot wait for the command's unwinding (a process that
    must stop before anything else happens) runs its registered undo now; it is reported with the rest.
    False when nothing is registered under ``key`` (no command, or already undone)."""
    log = _LOG
    if log is None:
        return False
    with log.lock:
        undo = log.undos.pop(key, None)
    if undo is None:
        return False
    log.run(key, undo)
    return True


def done(key: str) -> None:
    """The change registered under ``key`` was undone (or made permanent) by the step itself."""
    log = _LOG
    if log is not None:
        with log.lock:
            log.undos.pop(key, None)
            log.notes.pop(key, None)


def registered() -> set[str]:
    """The keys of every undo and note the command holds now (:func:`forget_since`)."""
    log = _LOG
    if log is None:
        return set()
    with log.lock:
        return set(log.undos) | set(log.notes)


def forget_since(before: set[str]) -> None:
    """Drop every undo and note registered after ``before`` (:func:`registered`) was taken: a step that removed
    what they were about (a lab it started) leaves nothing for an interrupt to undo or to say."""
    log = _LOG
    if log is not None:
        with log.lock:
            log.undos = {k: v for k, v in log.undos.items() if k in before}
            log.notes = {k: v for k, v in log.notes.items() if k in before}


def interrupt_message(signum: int, undone: list[str], failed: list[str], left: list[str]) -> str:
    parts = [f"interrupted by {signal.Signals(signum).name}"]
    parts.append(f"undone: {'; '.join(undone)}" if undone else "nothing needed undoing")
    if failed:
        parts.append(f"could NOT undo: {'; '.join(failed)}")
    if left:
        parts.append(f"left: {'; '.join(left)}")
    return "; ".join(parts)


@contextmanager
def command() -> Iterator[UndoLog]:
    """Run one command: SIGTERM raises Interrupted, and an interrupt (SIGINT or SIGTERM) undoes what the
    command registered and becomes Interrupted with a message naming what was undone and left."""
    global _LOG
    if not _main_thread():
        raise RuntimeError("a command runs in the main thread")
    global _PENDING
    log = _LOG = UndoLog()
    _PENDING = None
    previous = {sig: signal.signal(sig, _raise_interrupted) for sig in SIGNALS}
    unraisable = sys.unraisablehook
    sys.unraisablehook = _quiet_about_interrupts(unraisable)
    try:
        yield log
        if _PENDING is not None:  # interrupted, but the exception was swallowed on the way and the step ended
            raise Interrupted(_PENDING, f"interrupted by {signal.Signals(_PENDING).name}")
    except (KeyboardInterrupt, Exception) as exc:
        if not isinstance(exc, KeyboardInterrupt) and _PENDING is None:
            raise
        # Another error while an interrupt is pending is the interrupt, turned into something else on its
        # way up: CPython's `from m import name` with a missing name (ssl's RAND_egd) makes a TypeError of
        # what a signal handler raised meanwhile (CI: a SIGTERM while redis-py imported ssl, a traceback).
        signum = exc.signum if isinstance(exc, Interrupted) else _PENDING or signal.SIGINT
        _PENDING = None  # handled: the undos below may wait (checkpoint) without raising it again
        with shielded():
            forget_cut_imports()
            undone, failed, left = log.unwind()
        raise Interrupted(signum, interrupt_message(signum, undone, failed, left)) from None
    finally:
        _LOG, _PENDING = None, None
        sys.unraisablehook = unraisable
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def forget_cut_imports() -> list[str]:
    """Drop the submodules an import cut short by the signal left behind; the names dropped. Python removes
    the package whose import failed from sys.modules but keeps the submodules it had finished, and importing
    the package again then fails ("partially initialized module 'tenacity' has no attribute 'stop'"): CI, a
    sweep stopped while its first wait imported tenacity, whose undo then waited too."""
    dropped = []
    for name in list(sys.modules):
        parts = name.split(".")
        if any(".".join(parts[:k]) not in sys.modules for k in range(1, len(parts))):
            del sys.modules[name]
            dropped.append(name)
    return dropped


def _quiet_about_interrupts(hook: Callable[[Any], object]) -> Callable[[Any], object]:
    """An interrupt raised inside a weakref callback or a finaliser is swallowed by Python, which prints
    "Exception ignored in ..." and a traceback (CI, compose: a SIGTERM during a WeakKeyDictionary's
    callback). It is not lost: it is still pending, and the command ends on it. Anything else is printed."""

    def quiet(unraisable: Any) -> object:
        if isinstance(unraisable.exc_value, Interrupted):
            return None
        return hook(unraisable)

    return quiet


@contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM raises Interrupted in the block (inside :func:`command` it already does)."""
    if not _main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def shielded() -> Iterator[None]:
    if not _main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def uninterrupted(step: Callable[..., T], *args: object) -> T:
    """Run ``step(*args)`` to completion even if the main thread is interrupted meanwhile."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lab-step") as pool:
        future = pool.submit(step, *args)
        try:
            return future.result()
        except BaseException:
            if not future.done():
                future.exception()  # wait for the step; the interrupt is re-raised below
            raise
