"""What a drill's in-process workers do, one class per workload kind (lab.drill.history.Workers runs
them): the operation each worker sends next, how it is sent, and what is read back after the heal.

- ``set``: unique keys, and now and then a read of one of the worker's own acknowledged keys;
- ``counter``: INCR of one key per worker;
- ``register``: reads, writes and compare-and-set (a Lua script) on a few keys every worker shares,
  checked for linearizability (lab.drill.linearizable);
- ``list``: RPUSH of unique values onto a few shared lists, each read back whole (LRANGE) now and
  then through the master, and by one more worker through a replica, checked as Elle checks a
  list-append history (lab.drill.listappend).
"""

from __future__ import annotations

import itertools
import random
import threading
from typing import Any

import redis

KINDS = ("set", "counter", "register", "list")

#: A compare-and-set: swap only if the register holds the expected value ('' for no key: the
#: workload never writes an empty string).
CAS = """local v = redis.call('GET', KEYS[1])
if (v == false and ARGV[1] == '') or v == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 end
return 0"""

REGISTERS = 5  # keys every register worker shares: enough contention to test, few enough to follow
LIST_LENGTH = 100  # appends per list before the workload moves on to the next (a read stays small)

Op = tuple[str, str, Any]  # (f, key, value)


class Kind:
    """One workload kind; shared by all the drill's workers (thread-safe where it must be)."""

    name = ""

    def __init__(self, prefix: str, clients: int, read_every: int = 4) -> None:
        self.prefix, self.clients, self.read_every = prefix, clients, read_every

    def next(self, process: int, seq: int) -> Op:
        raise NotImplementedError

    def send(self, conn: redis.Redis, f: str, key: str, value: Any) -> tuple[Any, dict[str, Any]]:
        """Send one operation; what to record on success (the value, and fields of the record)."""
        raise NotImplementedError

    def acknowledged(self, process: int, f: str, key: str, value: Any) -> None:
        """An operation succeeded (the set workload reads back only what was acknowledged)."""

    def final(self, conn: redis.Redis) -> dict[str, Any]:
        """What the converged master holds of everything written: the ``final`` record's fields."""
        raise NotImplementedError


class SetKind(Kind):
    name = "set"

    def __init__(self, prefix: str, clients: int, read_every: int = 4) -> None:
        super().__init__(prefix, clients, read_every)
        self.acked: list[list[str]] = [[] for _ in range(clients)]
        self.written: set[str] = set()  # keys a write was attempted on (ok, fail or info)

    def next(self, process: int, seq: int) -> Op:
        acked = self.acked[process]
        if acked and seq % self.read_every == 0:
            return "read", acked[len(acked) // 2 + (seq % max(1, len(acked) // 2))], None
        return "write", f"{self.prefix}:{process}:{seq}", seq

    def send(self, conn: redis.Redis, f: str, key: str, value: Any) -> tuple[Any, dict[str, Any]]:
        if f == "read":
            return conn.get(key), {}
        self.written.add(key)
        conn.set(key, value)
        return value, {}

    def acknowledged(self, process: int, f: str, key: str, value: Any) -> None:
        if f == "write":
            self.acked[process].append(key)

    def final(self, conn: redis.Redis) -> dict[str, Any]:
        written = sorted(self.written)
        absent: list[str] = []
        for i in range(0, len(written), 1000):
            batch = written[i : i + 1000]
            pipe = conn.pipeline(transaction=False)
            for key in batch:
                pipe.exists(key)
            absent += [key for key, there in zip(batch, pipe.execute(), strict=True) if not there]
        return {"checked": len(written), "absent": absent, "counters": {}}


class CounterKind(Kind):
    name = "counter"

    def next(self, process: int, seq: int) -> Op:
        return "incr", f"{self.prefix}:counter:{process}", None

    def send(self, conn: redis.Redis, f: str, key: str, value: Any) -> tuple[Any, dict[str, Any]]:
        return int(conn.incr(key)), {}

    def final(self, conn: redis.Redis) -> dict[str, Any]:
        keys = [f"{self.prefix}:counter:{p}" for p in range(self.clients)]
        values = conn.mget(keys)
        counters = {k: int(v) if v is not None else 0 for k, v in zip(keys, values, strict=True)}
        return {"checked": len(keys), "absent": [], "counters": counters}


class RegisterKind(Kind):
    """Each worker picks one of :data:`REGISTERS` keys at random: reads it, writes a value of its own
    (``process-seq``, never written twice), or swaps it from the last value it read to a new one."""

    name = "register"

    def __init__(self, prefix: str, clients: int, read_every: int = 4) -> None:
        super().__init__(prefix, clients, read_every)
        self.keys = [f"{prefix}:r:{i}" for i in range(REGISTERS)]
        self.last_read: list[dict[str, str | None]] = [{} for _ in range(clients)]
        self.random = [random.Random(p) for p in range(clients)]

    def next(self, process: int, seq: int) -> Op:
        rng = self.random[process]
        key, roll = rng.choice(self.keys), rng.random()
        if roll < 0.5:
            return "read", key, None
        if roll < 0.8:
            return "write", key, f"{process}-{seq}"
        return "cas", key, [self.last_read[process].get(key), f"{process}-{seq}"]

    def send(self, conn: redis.Redis, f: str, key: str, value: Any) -> tuple[Any, dict[str, Any]]:
        if f == "read":
            return conn.get(key), {}
        if f == "write":
            conn.set(key, value)
            return value, {}
        expected, new = value
        swapped = bool(conn.eval(CAS, 1, key, expected or "", new))
        return value, {"swapped": swapped}

    def acknowledged(self, process: int, f: str, key: str, value: Any) -> None:
        if f == "read":
            self.last_read[process][key] = value

    def final(self, conn: redis.Redis) -> dict[str, Any]:
        registers = dict(zip(self.keys, conn.mget(self.keys), strict=True))
        return {"checked": len(self.keys), "absent": [], "counters": {}, "registers": registers}


class ListKind(Kind):
    """Every worker appends the next value of one shared sequence to the current list (a new list
    after every :data:`LIST_LENGTH` appends), and now and then reads the current list whole.
    Worker ``clients`` (one more than the writers) reads through a replica."""

    name = "list"

    def __init__(self, prefix: str, clients: int, read_every: int = 4) -> None:
        super().__init__(prefix, clients, read_every)
        self._values = itertools.count(1)
        self._lock = threading.Lock()
        self.appended = 0

    def key(self, index: int) -> str:
        return f"{self.prefix}:l:{index}"

    def next(self, process: int, seq: int) -> Op:
        current = self.key(self.appended // LIST_LENGTH)
        if process >= self.clients or seq % self.read_every == 0:
            return "read", current, None
        with self._lock:
            value = next(self._values)
            self.appended = value
        return "rpush", self.key((value - 1) // LIST_LENGTH), value

    def send(self, conn: redis.Redis, f: str, key: str, value: Any) -> tuple[Any, dict[str, Any]]:
        if f == "read":
            return [int(v) for v in conn.lrange(key, 0, -1)], {}
        conn.rpush(key, value)
        return value, {}

    def final(self, conn: redis.Redis) -> dict[str, Any]:
        keys = [self.key(i) for i in range((self.appended - 1) // LIST_LENGTH + 1)] if self.appended else []
        pipe = conn.pipeline(transaction=False)
        for key in keys:
            pipe.lrange(key, 0, -1)
        lists = {key: [int(v) for v in values] for key, values in zip(keys, pipe.execute(), strict=True)}
        return {"checked": len(keys), "absent": [], "counters": {}, "lists": lists}


def make(kind: str, prefix: str, clients: int, read_every: int = 4) -> Kind:
    classes: dict[str, type[Kind]] = {c.name: c for c in (SetKind, CounterKind, RegisterKind, ListKind)}
    return classes[kind](prefix, clients, read_every)
