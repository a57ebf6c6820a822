"""The list-append checker on small histories that show each anomaly, and on clean ones."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from lab.drill.listappend import Append, Read, check


def a(p: int, value: int, t0: float, t1: float | None, ok: bool | None = True, key: str = "l") -> Append:
    return Append(p, key, value, t0, t1, ok)


def rd(p: int, values: list[int], t0: float, t1: float, replica: bool = False, key: str = "l") -> Read:
    return Read(p, key, tuple(values), t0, t1, replica)


def final(values: list[int], key: str = "l") -> Read:
    return Read(-1, key, tuple(values), 1e9, 1e9, final=True)


def only(findings_counts: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in findings_counts.items() if v}


def test_a_clean_history_has_no_anomaly() -> None:
    appends = [a(0, 1, 0, 1), a(1, 2, 0.5, 2), a(0, 3, 3, 4)]
    reads = [rd(2, [1], 1.5, 1.6), rd(2, [1, 2, 3], 5, 6), final([1, 2, 3])]
    result = check(appends, reads)
    assert result.valid and not only(result.counts) and not only(result.master_reads)
    assert (result.keys, result.appends, result.reads) == (1, 3, 3)


def test_lost_and_read_then_lost() -> None:
    # The old master acknowledged 3 and 4 and a read saw them; the promoted replica never had them.
    # 6 was in flight when the master went: a read saw it, then it was gone.
    appends = [a(0, 1, 0, 1), a(0, 2, 2, 3), a(0, 3, 4, 5), a(0, 4, 6, 7), a(1, 6, 7, None, ok=None), a(0, 5, 10, 11)]
    result = check(appends, [rd(1, [1, 2, 3, 4, 6], 8, 9), final([1, 2, 5])])
    assert only(result.counts) == {"lost": 2, "read_then_lost": 1}
    assert not result.valid
    assert "2 acknowledged appends are not in the final read, the first 3" in result.examples["lost"][0]


def test_duplicated_phantom_and_failed_present() -> None:
    appends = [a(0, 1, 0, 1), a(0, 2, 2, 3, ok=False), a(0, 3, 4, None, ok=None)]
    result = check(appends, [final([1, 1, 2, 3, 9])])
    # 3's outcome was unknown: there or not, it is no anomaly.
    assert only(result.counts) == {"duplicated": 1, "phantom": 1, "failed_present": 1}


def test_reordered() -> None:
    appends = [a(0, 1, 0, 10), a(1, 2, 0, 10)]
    assert check(appends, [rd(2, [1, 2], 11, 12), final([1, 2])]).valid
    result = check(appends, [rd(2, [2, 1], 11, 12), final([1, 2])])
    assert only(result.counts) == {"reordered": 1}
    assert "has 2 before 1" in result.examples["reordered"][0]


def test_reads_behind_on_the_master_are_violations_and_on_a_replica_findings() -> None:
    appends = [a(0, 1, 0, 1), a(0, 2, 2, 3)]
    reads = [rd(0, [1, 2], 4, 5), rd(0, [1], 6, 7), rd(1, [1], 8, 9)]
    master = check(appends, [*reads, final([1, 2])])
    # Client 0 misses its own write (stale, read-your-writes) after seeing it (non-monotonic); client 1 is stale.
    assert master.master_reads == {"stale": 2, "non_monotonic": 1, "read_your_writes": 1}
    assert not master.valid
    replica = check(appends, [rd(0, [1, 2], 4, 5), *(r._replace(replica=True) for r in reads[1:]), final([1, 2])])
    assert replica.replica_reads == {"stale": 2, "non_monotonic": 1, "read_your_writes": 1}
    assert replica.valid and "client 0's read at 0.006 s misses 2" in replica.examples["replica_non_monotonic"][0]


def test_a_read_sent_before_the_ack_may_miss_the_value() -> None:
    # The append was acknowledged at 3; a read sent at 2.5 is concurrent with it.
    assert check([a(0, 1, 0, 3)], [rd(1, [], 2.5, 4), final([1])]).valid


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32))
def test_a_sequential_server_shows_no_anomaly(seed: int) -> None:
    """Clients append and read against one list that applies each command at an instant inside its
    interval, as a single master does: whatever the overlap, nothing is reported."""
    rng = random.Random(seed)
    held: list[int] = []
    appends, reads = [], []
    free_at = [0.0] * 4  # each client sends its next command once the last one returned
    t = 0.0
    for value in range(60):
        t = max(t + rng.random(), min(free_at) + 0.01)
        process = rng.choice([p for p, free in enumerate(free_at) if free < t])
        invoke, complete = max(free_at[process], t - rng.random()), t + rng.random()
        free_at[process] = complete
        if rng.random() < 0.3:
            reads.append(rd(process, list(held), invoke, complete))
        else:
            held.append(value)
            appends.append(a(process, value, invoke, complete))
    result = check(appends, [*reads, final(held)])
    assert result.valid, dict(result.examples)
