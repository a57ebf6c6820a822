"""Ctrl-C and SIGTERM while a command changes a lab: finish the step under way, then roll back.

- :func:`interruptible` turns SIGTERM into :class:`~lab.errors.Interrupted` (SIGINT already raises
  KeyboardInterrupt), so ``except BaseException`` cleanup runs for both.
- :func:`uninterrupted` runs a step (a lifecycle script, a compose call) in a worker thread: an
  interrupt in the main thread waits for the step instead of killing it halfway, which would leave
  a server that no pidfile names.
- :func:`shielded` ignores both signals while a rollback runs.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from types import FrameType
from typing import TypeVar

from lab.errors import Interrupted

T = TypeVar("T")
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextmanager
def interruptible() -> Iterator[None]:
    if not _main_thread():
        yield
        return

    def on_term(signum: int, _frame: FrameType | None) -> None:
        raise Interrupted(signum, f"interrupted by {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, on_term)
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
