"""lab.drill.history.Pace: how a drill's workers are spaced under `lab drill --rate`."""

from __future__ import annotations

import threading
import time

from lab.drill.history import Pace


def test_unpaced_never_waits() -> None:
    stop = threading.Event()
    stop.set()
    assert all(Pace(None).wait(stop) for _ in range(1000)), "no rate: go on until the loop sees stop"


def test_operations_are_spaced_by_the_interval_and_stop_ends_a_wait() -> None:
    before = time.monotonic()
    pace, stop = Pace(50.0), threading.Event()  # one operation every 20 ms
    assert pace.wait(stop), "the first operation is due at once"
    assert pace.next >= before + 0.02, "the next one is a whole interval away"
    stop.set()
    assert not pace.wait(stop), "a stop during the wait ends it"


def test_a_worker_held_up_starts_afresh_instead_of_bursting() -> None:
    pace, stop = Pace(1000.0), threading.Event()
    before = time.monotonic()
    pace.next -= 5.0  # held up for 5 s (a failover): 5,000 operations "behind"
    assert pace.wait(stop)
    assert pace.next >= before + 0.001, "the schedule restarts now, no burst of catch-up operations"
