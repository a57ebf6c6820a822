"""The register linearizability checker on histories known to be linearizable or not: hand-built,
from the literature, and random ones judged by brute force (every order of the operations)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lab.drill.linearizable import Op, brute_force, check


def op(process: int, f: str, arg: object, ret: object, invoke: float, complete: float | None, key: str = "k") -> Op:
    return Op(process, key, f, arg, ret, invoke, complete)


def w(p: int, value: object, t0: float, t1: float | None, key: str = "k") -> Op:
    return op(p, "write", value, None, t0, t1, key)


def r(p: int, value: object, t0: float, t1: float | None, key: str = "k") -> Op:
    return op(p, "read", None, value, t0, t1, key)


def cas(p: int, old: object, new: object, swapped: bool | None, t0: float, t1: float | None, key: str = "k") -> Op:
    return op(p, "cas", (old, new), swapped, t0, t1, key)


def verdict(ops: list[Op]) -> bool | None:
    got = check(sorted(ops, key=lambda o: o.invoke)).valid
    assert got == brute_force(ops), "the checker and brute force disagree"
    return got


def test_sequential_history_is_linearizable() -> None:
    assert verdict([w(0, 1, 0, 1), r(1, 1, 2, 3), w(0, 2, 4, 5), r(1, 2, 6, 7)])


def test_stale_read_after_a_newer_write_completed() -> None:
    # The classic: write 1, write 2 (both acknowledged), then a read of 1.
    ops = [w(0, 1, 0, 1), w(0, 2, 2, 3), r(1, 1, 4, 5)]
    assert verdict(ops) is False
    [violation] = check(ops).violations
    assert violation.op.ret == 1 and violation.possible == [2]
    assert violation.describe() == (
        "k: process 1's read 1 (0.004-0.005 s), which no order explains; the register could only hold 2"
    )


def test_value_seen_then_unseen() -> None:
    # Herlihy & Wing's register example: once a read returned the new value, a later read may not
    # return the old one, even while the write is still in flight.
    assert verdict([w(0, 1, 0, 10), r(1, 1, 1, 2), r(2, None, 3, 4)]) is False
    assert verdict([w(0, 1, 0, 10), r(1, None, 1, 2), r(2, 1, 3, 4)])


def test_only_a_search_finds_the_order() -> None:
    # Linearizing in call order (w1, then w2) fails at the read of 1; the only order is
    # w2, read 2, w1, read 1: a checker must backtrack to find it.
    ops = [w(0, 1, 0, 10), w(1, 2, 1, 10), r(2, 2, 2, 3), r(3, 1, 4, 5)]
    assert verdict(ops)
    # ... and one more read of 2 after both writes returned has no order at all.
    assert verdict([*ops, r(2, 2, 11, 12)]) is False


def test_compare_and_set() -> None:
    # Two clients both swap from "absent" concurrently: only one can have.
    assert verdict([cas(0, None, 1, True, 0, 5), cas(1, None, 2, True, 1, 6)]) is False
    # One swapped, the other saw the first's value and did not.
    assert verdict([cas(0, None, 1, True, 0, 5), cas(1, None, 2, False, 1, 6), r(2, 1, 7, 8)])
    # A cas that says it did not swap while the value was what it expected.
    assert verdict([w(0, 1, 0, 1), cas(1, 1, 2, False, 2, 3)]) is False


def test_unknown_outcomes_may_take_effect_late_or_never() -> None:
    # A write that timed out may have happened at any point after its call ...
    assert verdict([w(0, 1, 0, 1), w(1, 2, 2, None), r(2, 1, 3, 4), r(2, 2, 5, 6), w(0, 3, 7, 8), r(2, 3, 9, 10)])
    # ... or never.
    assert verdict([w(0, 1, 0, 1), w(1, 2, 2, None), r(2, 1, 30, 31)])
    # But not before it was called.
    assert verdict([w(0, 1, 0, 1), r(2, 2, 2, 3), w(1, 2, 4, None)]) is False
    # And once seen, it has happened: a later read cannot go back.
    assert verdict([w(0, 1, 0, 1), w(1, 2, 2, None), r(2, 2, 3, 4), r(2, 1, 5, 6)]) is False


def test_keys_are_independent_registers() -> None:
    ops = [w(0, 1, 0, 1, "a"), w(1, 2, 0, 1, "b"), r(2, 2, 2, 3, "b"), r(3, 1, 2, 3, "a")]
    result = check(ops)
    assert result.valid and result.keys == 2 and result.operations == 4
    bad = check([*ops, r(3, 2, 4, 5, "a")])
    assert bad.valid is False and [v.key for v in bad.violations] == ["a"]


def test_many_timed_out_writes_stay_cheap() -> None:
    # Each may have taken effect at any moment after its call, or never: what a later read can
    # return is any of them, or the last acknowledged value, and nothing else.
    ops = [w(0, 0, 0, 1)] + [w(p, p, p, None) for p in range(1, 40)]
    assert check([*ops, r(99, 17, 50, 51), r(99, 23, 52, 53)]).valid
    assert check([*ops, r(99, 17, 50, 51), r(99, 0, 52, 53)]).valid is False


def test_reads_of_unknown_outcome_constrain_nothing() -> None:
    assert verdict([w(0, 1, 0, 1), r(1, 7, 2, None)])


def test_a_search_too_big_is_unknown_not_a_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lab.drill.linearizable.MAX_CONFIGS", 50)
    # Twelve writes in flight at once: 2**12 subsets of them may have taken effect by the read.
    ops = [w(p, p, 0, 100) for p in range(12)] + [r(99, 0, 1, 2)]
    result = check(ops)
    assert result.valid is None and result.unknown == ["k"]


def _linearizable_history(seed: int, processes: int, length: int) -> list[Op]:
    """A random execution: operations take effect at distinct instants inside their intervals, on
    one register per key; every read returns what the register held then. Linearizable by
    construction, however much the intervals overlap."""
    rng = random.Random(seed)
    state: dict[str, object] = {}
    free_at = dict.fromkeys(range(processes), 0.0)  # a process whose outcome was lost is replaced, as in Jepsen
    ops = []
    t = 0.0
    for value in range(length):
        t += rng.random()
        idle = [p for p, free in free_at.items() if free < t]
        if not idle:
            t = min(free_at.values()) + 0.01
            idle = [p for p, free in free_at.items() if free < t]
        process, key, f = rng.choice(idle), rng.choice("ab"), rng.choice(["read", "write", "cas"])
        held = state.get(key)
        arg: object
        if f == "read":
            arg, ret = None, held
        elif f == "write":
            arg, ret, state[key] = value, None, value
        else:
            expected = held if rng.random() < 0.5 else rng.randrange(length)
            arg, ret = (expected, value), held == expected
            if ret:
                state[key] = value
        invoke = max(free_at[process], t - rng.random() * 3)
        complete = None if f != "read" and rng.random() < 0.05 else t + rng.random() * 3
        ops.append(Op(process, key, f, arg, ret, invoke, complete))
        if complete is None:
            del free_at[process]
            free_at[max(free_at, default=process) + 1 + process] = t
        else:
            free_at[process] = complete
    return ops


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32), st.integers(2, 6))
def test_generated_executions_are_linearizable(seed: int, processes: int) -> None:
    ops = _linearizable_history(seed, processes, 300)
    result = check(sorted(ops, key=lambda o: o.invoke))
    assert result.valid, [v.describe() for v in result.violations]


_value = st.sampled_from([None, 1, 2])


@st.composite
def _small_history(draw: st.DrawFn) -> list[Op]:
    ops = []
    for process in range(draw(st.integers(1, 3))):
        t = draw(st.floats(0, 3))
        for _ in range(draw(st.integers(1, 3))):
            f = draw(st.sampled_from(["read", "write", "cas"]))
            length = draw(st.floats(0.1, 4))
            unknown = f != "read" and draw(st.booleans()) and draw(st.booleans())
            complete = None if unknown else t + length
            arg: object
            ret: object
            if f == "read":
                arg, ret = None, draw(_value)
            elif f == "write":
                arg, ret = draw(st.sampled_from([1, 2, 3])), None
            else:
                arg, ret = (draw(_value), draw(st.sampled_from([1, 2, 3]))), draw(st.booleans())
            ops.append(Op(process, "k", f, arg, ret, t, complete))
            if complete is None:
                break
            t = complete + draw(st.floats(0.01, 2))
    return ops


@settings(max_examples=400, deadline=None)
@given(_small_history())
def test_agrees_with_brute_force(ops: list[Op]) -> None:
    assert check(sorted(ops, key=lambda o: o.invoke)).valid == brute_force(ops)
