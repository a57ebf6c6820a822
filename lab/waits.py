"""Wait on a condition with a deadline; a timeout says what it waited for and what it saw last."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from lab.errors import LabError
from lab.interrupts import checkpoint

T = TypeVar("T")


class WaitTimeout(LabError):
    """A wait ran out of time; the message holds the goal, the last observation and any detail."""


def wait_for(
    probe: Callable[[], tuple[bool, T]],
    *,
    what: str,
    timeout: float,
    interval: float = 0.02,
    describe: Callable[[T], str] = str,
    detail: Callable[[], str] | None = None,
) -> T:
    """Poll ``probe`` (returning ``(done, observation)``) until done or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        checkpoint()  # an interrupt that was swallowed on the way (lab.interrupts) stops the wait
        done, seen = probe()
        if done:
            return seen
        if time.monotonic() >= deadline:
            extra = f"\n{detail()}" if detail else ""
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}; last seen: {describe(seen)}{extra}")
        time.sleep(interval)
