"""Wait on a condition with a deadline; a timeout says what it waited for and what it saw last.

Every wait in lab/ is :func:`wait_for`, built on tenacity (one idiom: stop after a deadline, a fixed
pause between tries, retry while the probe says "not yet"). tenacity is imported on the first wait,
not with this module: ``lab status`` and ``lab list`` never wait and do not pay for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from lab.errors import WaitTimeout
from lab.interrupts import checkpoint

__all__ = ["WaitTimeout", "wait_for"]

T = TypeVar("T")


def wait_for(
    probe: Callable[[], tuple[bool, T]],
    *,
    what: str,
    timeout: float,
    interval: float = 0.02,
    describe: Callable[[T], str] = str,
    detail: Callable[[], str] | None = None,
) -> T:
    """Poll ``probe`` (returning ``(done, observation)``) until done or ``timeout`` seconds pass, then
    raise :class:`WaitTimeout` with ``what``, the last observation (``describe``) and ``detail()``.

    The probe runs at least once; an exception it raises ends the wait at once (it is not a "not yet").
    Before each try :func:`lab.interrupts.checkpoint` raises an interrupt that was swallowed on the way,
    so a Ctrl-C or SIGTERM always stops a wait."""
    import tenacity

    def gave_up(state: tenacity.RetryCallState) -> T:
        assert state.outcome is not None
        _, seen = state.outcome.result()
        raise WaitTimeout(what, timeout, describe(seen), detail() if detail else "")

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_result(lambda outcome: not outcome[0]),
        stop=tenacity.stop_after_delay(timeout),
        wait=tenacity.wait_fixed(interval),
        before=lambda _state: checkpoint(),
        retry_error_callback=gave_up,
    )
    _, seen = retrying(probe)
    return seen
