"""Is a register history linearizable? Reads, writes and compare-and-set per key, checked the way
Knossos and Porcupine check them, in one pass over the history and in bounded memory.

The search is Wing & Gong's (every order of the concurrent operations that respects real time),
done just in time as in Lowe's "Testing for linearizability" (2016): a set of *configurations*
(the register's value, and which in-flight operations have already taken effect) is carried
through the history's calls and returns in time order; an operation is linearized only when its
return forces it, so the set stays small. Keys are independent registers, checked separately
(P-compositionality, Horn & Kroening 2015), so each key's search is as small as its concurrency.

An operation is :class:`Op`: ``f`` is ``read`` (``ret``: the value read, None for no key),
``write`` (``arg``: the value), or ``cas`` (``arg``: ``(expected, new)``, ``ret``: whether it
swapped). ``complete`` is None when the client never learned the outcome (a timeout): such an
operation may take effect at any moment after its call, or never (which, for a register, is the
same as taking effect after everything else). Operations known to have failed, and reads whose
outcome is unknown, constrain nothing and are left out by :func:`check`.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

#: Per key, at most this many configurations are carried; beyond it the key's verdict is unknown
#: (Knossos and Porcupine give up the same way, on a timeout). Histories of the lab's register
#: workload stay in the tens; a pile of operations with unknown outcomes on one key grows it.
MAX_CONFIGS = 20_000

_INVALID = object()


class Op(NamedTuple):
    process: int
    key: str
    f: str  # read | write | cas
    arg: Any
    ret: Any
    invoke: float
    complete: float | None  # None: the outcome is unknown


def step(state: Any, op: Op) -> Any:
    """The register's value after ``op`` from ``state``, or ``_INVALID`` if ``op`` could not have
    returned what it did from there."""
    if op.f == "read":
        return state if op.ret == state else _INVALID
    if op.f == "write":
        return op.arg
    if op.f == "cas":
        expected, new = op.arg
        swapped = state == expected
        if op.complete is not None and bool(op.ret) != swapped:
            return _INVALID
        return new if swapped else state
    raise ValueError(f"not a register operation: {op.f}")


@dataclass
class Violation:
    """The first return no order explains: ``op`` returned what it did while the register could
    only have held one of ``possible`` (the values in the configurations just before it). A
    process below 0 is the read of what the healed lab kept."""

    key: str
    op: Op
    possible: list[Any]
    in_flight: list[Any] = field(default_factory=list)  # values writes in flight meanwhile would set

    def describe(self) -> str:
        op = self.op
        what = {"read": f"read {op.ret!r}", "write": f"write {op.arg!r}", "cas": f"cas {op.arg!r} -> {op.ret}"}[op.f]
        held = ", ".join(repr(v) for v in self.possible[:5]) or "nothing consistent"
        if op.process < 0:  # lab.drill.consistency: the read of what the healed lab kept
            who = f"the read after the heal ({op.invoke / 1000:.3f} s) returned {op.ret!r}"
        else:
            at = f"{op.invoke / 1000:.3f}-{(op.complete or 0) / 1000:.3f} s"
            who = f"process {op.process}'s {what} ({at})"
        flying = ", ".join(repr(v) for v in self.in_flight[:5])
        flying = f" (or a value in flight: {flying})" if flying else ""
        return f"{self.key}: {who}, which no order explains; the register could only hold {held}{flying}"


@dataclass
class Verdict:
    """Per history: keys checked, operations checked, and per key ``valid`` (True), a violation,
    or unknown (the search outgrew :data:`MAX_CONFIGS`)."""

    keys: int = 0
    operations: int = 0
    violations: list[Violation] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    max_configs: int = 0

    @property
    def valid(self) -> bool | None:
        if self.violations:
            return False
        return None if self.unknown else True


Config = tuple[Any, frozenset[int], frozenset[int]]  # value, linearized and in flight, linearized for ever


class _Configs:
    """A set of configurations without the dominated ones. An operation whose outcome is unknown
    never returns, so a configuration in which it has not taken effect yet can do all that one in
    which it has can, and more: of two configurations that differ only in such operations, the one
    with fewer of them taken effect is kept. Without this, k timed-out writes on one key would
    multiply the configurations by 2**k."""

    def __init__(self) -> None:
        self._by: dict[tuple[Any, frozenset[int]], list[frozenset[int]]] = {}

    def add(self, config: Config) -> bool:
        """Keep ``config`` unless one already kept dominates it; True if it was kept."""
        state, linearized, forever = config
        kept = self._by.setdefault((state, linearized), [])
        if any(other <= forever for other in kept):
            return False
        kept[:] = [other for other in kept if not forever <= other]
        kept.append(forever)
        return True

    def __iter__(self) -> Iterator[Config]:
        for (state, linearized), kept in self._by.items():
            for forever in kept:
                yield state, linearized, forever

    def __len__(self) -> int:
        return sum(len(kept) for kept in self._by.values())

    def states(self) -> list[Any]:
        return sorted({state for state, _ in self._by}, key=repr)


class _Key:
    """One key's search: the configurations, and the operations in flight (called, not returned)."""

    __slots__ = ("configs", "dead", "pending")

    def __init__(self, initial: Any) -> None:
        self.configs = _Configs()
        self.configs.add((initial, frozenset(), frozenset()))
        self.pending: dict[int, Op] = {}
        self.dead = False  # a violation or unknown: the key's remaining events are skipped

    def call(self, ident: int, op: Op) -> None:
        self.pending[ident] = op

    def ret(self, ident: int) -> bool | None:
        """``op`` returned: keep the configurations in which it can have taken effect by now.
        False: none (a violation); None: too many to follow."""
        done = _Configs()
        seen = _Configs()
        stack = [config for config in self.configs if seen.add(config)]
        explored = 0
        while stack:
            state, linearized, forever = stack.pop()
            if ident in linearized:
                done.add((state, linearized - {ident}, forever))
                continue
            for other, op in self.pending.items():
                if other in linearized or other in forever:
                    continue
                after = step(state, op)
                if after is _INVALID:
                    continue
                if op.complete is None:
                    config = (after, linearized, forever | {other})
                else:
                    config = (after, linearized | {other}, forever)
                if seen.add(config):
                    stack.append(config)
                    explored += 1
            if explored > MAX_CONFIGS:
                return None
        del self.pending[ident]
        if not len(done):
            return False
        self.configs = done
        return True


def _events(ops: Iterable[Op]) -> Iterator[tuple[float, int, int, Op]]:
    """Calls and returns in time order (a call before a return at the same instant: such operations
    count as concurrent). ``ops`` must come in the order of their calls; returns are held in a heap,
    so memory follows the operations in flight, not the history's length."""
    returns: list[tuple[float, int, int, Op]] = []
    for ident, op in enumerate(ops):
        while returns and returns[0][0] < op.invoke:
            yield heapq.heappop(returns)
        yield (op.invoke, 0, ident, op)
        if op.complete is not None:
            heapq.heappush(returns, (op.complete, 1, ident, op))
    while returns:
        yield heapq.heappop(returns)


def check(ops: Iterable[Op], initial: Any = None) -> Verdict:
    """Check every key's register history; ``ops`` in the order of their calls (a stream is fine),
    without the operations known to have failed."""
    verdict = Verdict()
    keys: dict[str, _Key] = {}
    for _t, kind, ident, op in _events(relevant(ops)):
        key = keys.get(op.key)
        if key is None:
            key = keys[op.key] = _Key(initial)
        if key.dead:
            continue
        if kind == 0:
            verdict.operations += 1
            key.call(ident, op)
            continue
        possible = key.configs.states()
        in_flight = [
            o.arg if o.f == "write" else o.arg[1] for i, o in key.pending.items() if i != ident and o.f != "read"
        ]
        outcome = key.ret(ident)
        verdict.max_configs = max(verdict.max_configs, len(key.configs))
        if outcome is False:
            verdict.violations.append(Violation(op.key, op, possible, sorted(set(in_flight), key=repr)))
            key.dead = True
        elif outcome is None:
            verdict.unknown.append(op.key)
            key.dead = True
    verdict.keys = len(keys)
    return verdict


def relevant(ops: Iterable[Op]) -> Iterator[Op]:
    """Leave out what constrains nothing: reads whose outcome is unknown. (Operations known to have
    failed never become an :class:`Op`.)"""
    for op in ops:
        if op.f == "read" and op.complete is None:
            continue
        yield op


def brute_force(ops: list[Op], initial: Any = None) -> bool:
    """Every order of the operations, for tests: linearizable iff some permutation respects real
    time and the register. Operations of unknown outcome may also be left out. Exponential: a
    handful of operations only."""
    ops = list(relevant(ops))
    for keep in itertools.product(*[(True, False) if op.complete is None else (True,) for op in ops]):
        chosen = [op for op, k in zip(ops, keep, strict=True) if k]
        for order in itertools.permutations(chosen):
            if _respects_time(order) and _legal(order, initial):
                return True
    return False


def _respects_time(order: tuple[Op, ...]) -> bool:
    for i, a in enumerate(order):
        for b in order[i + 1 :]:
            if b.complete is not None and b.complete < a.invoke:
                return False  # b returned before a was called, yet comes after it
    return True


def _legal(order: tuple[Op, ...], initial: Any) -> bool:
    states: dict[str, Any] = {}
    for op in order:
        after = step(states.get(op.key, initial), op)
        if after is _INVALID:
            return False
        states[op.key] = after
    return True
