"""One drill's history: what the clients did and saw, what the Sentinels announced, each data node's
role, and the faults, on one clock (milliseconds since the drill started). Stored as JSON lines
(``history.jsonl``); other clients' workloads (ioredis, node-redis) write the same records.

Record format (every record has ``t``, ms since the start, and ``type``):

- ``invoke`` / ``ok`` / ``fail`` / ``info``: a client operation. ``process`` (the worker), ``f``
  (``write``, ``read``, ``incr``, ``rpush``), ``key``, ``value``; on completion ``node`` (the node that
  served it, when known). ``fail`` means the operation did not happen (``error``: its class, e.g.
  ``ReadOnlyError``); ``info`` means it may or may not have (a timeout, a lost connection).
  For a read, ``value`` on ``ok`` is what was read (``null``: no such key).
- ``sentinel``: ``sentinel`` (its name), ``event`` (``+switch-master``, ``+sdown``, ...), ``data``.
- ``role``: ``node``, ``role`` (``master``, ``replica``, ``down``), ``offset``, ``master`` (the node it
  replicates from).
- ``fault``: ``action``, ``fault`` (``kill``, ``freeze``, ...), ``node``. ``inject`` is stamped when the
  injection starts, ``applied`` once it has taken effect (a fault applied in one go, a drill's step or a
  failover, has no ``applied``), ``revert`` once it has been undone.
- ``background``: ``node``, ``what`` (``AOF rewrite``, ``RDB save``, ``fork``), ``forks``, ``fork_ms`` (the
  latest fork's time, the main thread stalled meanwhile): the server forked in the second before.
- ``pause``: ``node``, ``event`` (``start``, ``end``): a safe failover held that master's writes
  (CLIENT PAUSE WRITE) meanwhile; it still says master, and takes no write.
- ``client``: ``process``, ``event`` (a client library's own: ``reconnecting``, ``ready``, ...), ``detail``.
- ``drill``: ``event`` (``start``, ``stop``: the span the workload is judged over; ``heal``: the lab is healed
  after it), ``scenario``.
- ``step``: ``event`` (``start``, ``end``), ``step`` (its name): one step of a multi-step drill.
- ``final``: after the heal, from the converged master ``node``: ``checked`` (how many written keys were
  looked up), ``absent`` (those not there), ``counters`` (key -> value, counter workload), ``lists``
  (key -> values, list workload).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis

from lab import interrupts
from lab.drill import workloads
from lab.drill.events import SentinelEvents
from lab.drill.outcomes import error_class, served_by
from lab.drill.spool import NO_FIELDS, Entry, Spool, entry_record, line, parse, read_spool

if TYPE_CHECKING:
    from lab.drill.clients import AdapterRun
from lab.spec import LabSpec, Node
from lab.topology import node_client, sentinel_for

Record = dict[str, Any]


#: A client operation's records: its invoke, then one completion.
OPERATIONS = ("invoke", "ok", "fail", "info")
COMPLETIONS = ("ok", "fail", "info")


def not_operations(records: Iterable[Record]) -> list[Record]:
    """What the servers, the Sentinels and the drill did: a few thousand records next to an unpaced
    workload's million a minute, so that what looks through them many times goes through only these."""
    return [r for r in records if r["type"] not in OPERATIONS]


class Clock:
    """Milliseconds since the drill started (monotonic). ``epoch_ms`` is the same instant on the
    wall clock, which client adapters in other processes measure from."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.epoch_ms = time.time() * 1000

    def ms(self) -> float:
        return round((time.monotonic() - self.started) * 1000, 3)

    def seconds(self) -> float:
        return time.monotonic() - self.started


class History:
    """Records appended from many threads; written as JSON lines. With ``spool`` (a path), they go to
    disk as they come (lab.drill.spool: a soak of any length holds a second or two in memory) and
    :attr:`records` reads them back."""

    def __init__(self, clock: Clock | None = None, spool: Path | None = None) -> None:
        self.clock = clock or Clock()
        self._records: list[Record] = []
        self._lock = threading.Lock()
        self.spool = Spool(spool, self.clock.ms) if spool is not None else None

    def add(self, type_: str, t: float | None = None, **fields: Any) -> None:
        """A record stamped now, or at ``t`` (ms on this history's clock) when it happened earlier."""
        record = {"t": self.clock.ms() if t is None else t, "type": type_, **fields}
        if self.spool is not None:
            self.spool.add(record)
            return
        with self._lock:
            self._records.append(record)

    def extend(self, records: Iterable[Record]) -> None:
        if self.spool is not None:
            for record in records:
                self.spool.add(record)
            return
        with self._lock:
            self._records.extend(records)

    @property
    def records(self) -> list[Record]:
        if self.spool is not None:
            self.spool.flush()
            return list(read_spool(self.spool.path))
        with self._lock:
            self._records.sort(key=lambda r: r["t"])  # (in place: sorted already but for the newest, it is quick)
            return list(self._records)

    def write(self, path: Path) -> None:
        with path.open("wb") as handle:
            handle.writelines(line(record) for record in self.records)


def read_history(path: Path) -> list[Record]:
    with path.open("rb") as handle:
        return sorted((parse(text) for text in handle if text.strip()), key=lambda r: r["t"])


# -- the client workload --------------------------------------------------------------------------
def sentinel_client(spec: LabSpec) -> redis.Redis:
    """A Sentinel-aware client whose pool holds one connection, so the node that served each command
    is known (``served_by``). Not ``single_connection_client=True``: with redis-py 8.1 such a client
    reconnects to the old master's address for ever after a failover (its reconnect bypasses the
    Sentinel lookup that a pooled connection makes)."""
    sentinel = sentinel_for(spec)
    conn: redis.Redis = sentinel.master_for(spec.master_name, max_connections=1)
    return conn


@dataclass
class Workload:
    """What each worker does (lab.drill.workloads: ``set``, ``counter``, ``register``, ``list``); a set
    worker reads one of its own acknowledged keys back every ``read_every`` operations. The first
    ``direct`` workers connect straight to the master's address at the start, as an application
    configured with a fixed host does, instead of through Sentinel. Keys start with ``prefix``,
    unique per drill. ``rate``: operations per second across all workers (None: each goes as fast as
    it can)."""

    kind: str = "set"
    read_every: int = 4
    prefix: str = field(default_factory=lambda: f"drill:{time.time_ns() // 1_000_000}")
    direct: int = 0
    rate: float | None = None


class Pace:
    """Spaces one worker's operations ``1/rate`` seconds apart (None: no spacing). A worker held up
    (a failover, a timeout) starts afresh instead of catching up in a burst."""

    def __init__(self, rate: float | None) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self.next = time.monotonic()

    def wait(self, stop: threading.Event) -> bool:
        """Sleep until the next operation is due; False if ``stop`` was set meanwhile."""
        if not self.interval:
            return True
        now = time.monotonic()
        if self.next < now - 1.0:
            self.next = now
        delay, self.next = self.next - now, self.next + self.interval
        return delay <= 0 or not stop.wait(delay)


class Workers:
    """N threads running the workload against the lab through Sentinel, recording every operation
    (a list workload has one more, reading through a replica). Records are kept per thread as tuples
    and turned into dicts only at the end (cheap while running)."""

    def __init__(self, spec: LabSpec, history: History, workload: Workload, clients: int = 4) -> None:
        self.spec, self.history, self.workload = spec, history, workload
        self.clients = clients
        self.kind = workloads.make(workload.kind, workload.prefix, clients, workload.read_every)
        threads = clients + (1 if workload.kind == "list" else 0)
        self._stop = threading.Event()
        self._nodes = {(n.host, n.port): n.name for n in spec.redis_nodes}
        self._threads = [threading.Thread(target=self._run, args=(p,), daemon=True) for p in range(threads)]
        # Each worker's entries: kept until the end, or queued for the history's spool as they come.
        spool = history.spool
        self._logs = [spool.source() if spool is not None else deque[Entry]() for _ in range(threads)]

    def start(self) -> Workers:
        for thread in self._threads:
            thread.start()
        return self

    def abort(self) -> None:
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        if self.history.spool is None:
            # (each entry let go as it becomes a record: both at once were a third of a drill's peak memory)
            self.history.extend(entry_record(log.popleft()) for log in self._logs for _ in range(len(log)))

    def _served_by(self, conn: redis.Redis) -> str | None:
        address = served_by(conn)
        return self._nodes.get(address) if address else None

    def _client(self, process: int) -> redis.Redis:
        if process >= self.clients:  # the list workload's replica reader
            replica: redis.Redis = sentinel_for(self.spec).slave_for(self.spec.master_name, max_connections=1)
            return replica
        if process >= self.workload.direct:
            return sentinel_client(self.spec)
        from lab.nodes import current_master

        master = current_master(self.spec, timeout=10)
        return node_client(self.spec, master, timeout=1, max_connections=1)

    def _run(self, process: int) -> None:
        log = self._logs[process]
        clock = self.history.clock
        try:
            conn = self._client(process)
        except (redis.RedisError, OSError) as exc:
            log.append((clock.ms(), "client", process, None, None, None, {"event": "error", "detail": str(exc)[:200]}))
            return
        kind = self.kind
        replica = {"replica": True} if process >= self.clients else {}
        seq = 0
        pace = Pace(self.workload.rate / self.clients if self.workload.rate else None)
        try:
            while not self._stop.is_set() and pace.wait(self._stop):
                seq += 1
                f, key, value = kind.next(process, seq)
                log.append((clock.ms(), "invoke", process, f, key, value, NO_FIELDS))
                try:
                    result, extra = kind.send(conn, f, key, value)
                except (redis.RedisError, OSError) as exc:
                    error, maybe = error_class(exc)
                    # a read that may have happened changed nothing: it failed
                    outcome = "info" if maybe and f != "read" else "fail"
                    log.append((clock.ms(), outcome, process, f, key, value, {"error": error}))
                    self._stop.wait(0.005)
                    continue
                extra = {"node": self._served_by(conn), **extra, **replica}
                log.append((clock.ms(), "ok", process, f, key, result, extra))
                kind.acknowledged(process, f, key, result)
        finally:
            conn.close()


# -- what the servers did -------------------------------------------------------------------------
#: Every this many role rounds (about a second), each data node's forks are looked at (RoleSampler).
BACKGROUND_EVERY = 10


class RoleSampler:
    """Every data node's role and replication offset, sampled every ``interval`` seconds; about every
    second, the forks each one made (``background`` records)."""

    def __init__(self, spec: LabSpec, history: History, interval: float = 0.1) -> None:
        self.spec, self.history, self.interval = spec, history, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._names = {(n.host, n.port): n.name for n in spec.redis_nodes}
        self._forks: dict[str, _ForkLook] = {}  # node -> its forks at the last look

    def start(self) -> RoleSampler:
        self._thread.start()
        return self

    def abort(self) -> None:
        self._stop.set()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _sample(self, node: Node) -> Record:
        try:
            with node_client(self.spec, node, timeout=0.2) as conn:
                info = conn.info("replication")
        except (redis.RedisError, OSError):
            return {"node": node.name, "role": "down", "offset": None, "master": None}
        if info.get("role") == "slave":
            master = self._names.get((str(info.get("master_host")), int(info.get("master_port", 0))))
            return {
                "node": node.name,
                "role": "replica",
                "offset": int(info.get("slave_repl_offset", 0)),
                "master": master,
            }
        return {"node": node.name, "role": "master", "offset": int(info.get("master_repl_offset", 0)), "master": None}

    def _run(self) -> None:
        rounds = 0
        while not self._stop.is_set():
            for node in self.spec.redis_nodes:
                # Stamped when asked, not when answered: the role held at some moment in between, and a
                # reply that came back after `lab failover` lifted its write pause was given before the
                # old master was demoted (stamped late, it read as 500 ms of two masters: CI, loaded).
                asked = self.history.clock.ms()
                self.history.add("role", t=asked, **self._sample(node))
            if rounds % BACKGROUND_EVERY == 0:
                for node in self.spec.redis_nodes:
                    self._background(node)
            rounds += 1
            self._stop.wait(self.interval)

    def _background(self, node: Node) -> None:
        """A fork since the last look (an AOF rewrite, an RDB save, a replica's full sync): a
        ``background`` record, so a report can tell the server's own stalls from the fault's."""
        try:
            with node_client(self.spec, node, timeout=0.2) as conn:
                persistence, stats = conn.info("persistence"), conn.info("stats")
        except (redis.RedisError, OSError):
            return
        look = _ForkLook.of(persistence, stats)
        before = self._forks.get(node.name)
        self._forks[node.name] = look
        if before is None or look.forks <= before.forks:
            return
        # One look can span several forks (a rewrite, then a save: compose, loaded, a second apart): one
        # record per kind. latest_fork_usec is the most recent fork's.
        kinds = [
            (what, n)
            for what, n in (("AOF rewrite", look.started(before, 0)), ("RDB save", look.started(before, 1)))
            if n
        ]
        other = look.forks - before.forks - sum(n for _, n in kinds)
        if other > 0:
            kinds.append(("fork", other))
        fork_ms = round(int(stats.get("latest_fork_usec", 0)) / 1000, 3)
        for what, n in kinds:
            self.history.add("background", node=node.name, what=what, forks=n, fork_ms=fork_ms)


@dataclass(frozen=True)
class _ForkLook:
    """One look at a node's forks. Per kind (0: AOF rewrite, 1: RDB save): its counter of starts (Redis
    7.0+; 0 before), a mark each finished one changes on every build (the AOF's base size, the last
    save's time) and whether one is running."""

    forks: int
    counters: tuple[int, int]
    marks: tuple[int, int]
    running: tuple[bool, bool]

    @classmethod
    def of(cls, persistence: dict[str, Any], stats: dict[str, Any]) -> _ForkLook:
        def num(key: str) -> int:
            return int(persistence.get(key, 0))

        return cls(
            forks=int(stats.get("total_forks", 0)),
            counters=(num("aof_rewrites"), num("rdb_saves")),
            marks=(num("aof_base_size"), num("rdb_last_save_time")),
            running=(bool(num("aof_rewrite_in_progress")), bool(num("rdb_bgsave_in_progress"))),
        )

    def started(self, before: _ForkLook, kind: int) -> int:
        """How many of a kind started since ``before``. The counters count a start; without them, one
        that was running then is not counted again when it ends (a 6.2 rewrite takes a second)."""
        counted = self.counters[kind] - before.counters[kind]
        if counted > 0:
            return counted
        if before.running[kind]:
            return 0
        return int(self.running[kind] or self.marks[kind] != before.marks[kind])


#: How much longer than planned an adapter may run before it stops by itself (a drill whose fault
#: takes longer than its workload extends the workload; see lab.drill.scenarios.RECOVERY_TAIL_S).
ADAPTER_SLACK_S = 300.0


class Recorder:
    """Everything of one drill on one clock: ``with Recorder(spec, workload) as rec: ... rec.fault(...)``.

    The workload runs in this process (``Workers``, redis-py), or in a client adapter process
    (``adapter``, see lab.drill.clients) that writes the same records, on the same clock, until it is told to
    stop (``duration`` is only its safety limit: a drill may run longer than planned).
    """

    def __init__(
        self,
        spec: LabSpec,
        workload: Workload | None = None,
        clients: int = 4,
        adapter: AdapterRun | None = None,
        duration: float = 0.0,
        spool: Path | None = None,
    ) -> None:
        self.spec = spec
        self.history = History(spool=spool)
        self.clients = clients
        self.adapter, self.duration = adapter, duration
        self.workload = workload or (Workload(kind="list", prefix=adapter.prefix) if adapter else Workload())
        spooled = self.history.spool
        self.events = SentinelEvents(spec, clock=self.history.clock.ms, sink=spooled.add if spooled else None)
        self.roles = RoleSampler(spec, self.history)
        self.workers = None if adapter else Workers(spec, self.history, self.workload, clients)
        self._workload_stopped = self._stopped = False

    def __enter__(self) -> Recorder:
        self.events.__enter__()
        self.roles.start()
        if self.workers is not None:
            self.workers.start()
        if self.adapter is not None:
            self.adapter.start(self.history.clock.epoch_ms, self.duration + ADAPTER_SLACK_S)
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop_workload(self) -> None:
        """Stop the clients; idempotent. The Sentinels' events and the nodes' roles are still
        recorded (until :meth:`stop`): a failover that began during the workload and ends during the
        heal (a second one, say) is part of what the drill saw, and so is the old master rejoining."""
        if self._workload_stopped:
            return
        self._workload_stopped = True
        if self.workers is not None:
            self.workers.stop()
        if self.adapter is not None:
            self.adapter.stop()
            self.history.extend(self.adapter.wait(timeout=15))  # a stuck command is given up after 2 s

    def stop(self) -> None:
        """Stop the workload, then the role sampler and the Sentinels' event streams; idempotent."""
        self.stop_workload()
        if self._stopped:
            return
        self._stopped = True
        self.roles.stop()
        self.events.__exit__(None, None, None)
        self.history.extend(self.events.records())

    def abort(self) -> None:
        """An interrupt: stop everything now without waiting for it (the threads are daemons, a worker
        may hang on a frozen node for ever; the adapter is killed and its config deleted)."""
        self._workload_stopped = self._stopped = True
        if self.workers is not None:
            self.workers.abort()
        if self.adapter is not None and not interrupts.undo_now(self.adapter.key):
            self.adapter.kill()
        self.roles.abort()  # (the Sentinel event threads are daemons too: they end with the process)

    def fault(self, action: str, fault: str, node: str, how: str = "") -> None:
        """``how``: a variant of the fault the story names (``out``/``in``: a one-way isolation)."""
        fields: dict[str, Any] = {"action": action, "fault": fault, "node": node}
        if how:
            fields["how"] = how
        self.history.add("fault", **fields)

    def final(self, master: Node) -> None:
        """Look up, on the converged master, everything the workers wrote (the keys, the counters, the
        registers, the lists)."""
        with node_client(self.spec, master, timeout=10) as conn:
            if self.workers is not None:
                self.history.add("final", node=master.name, **self.workers.kind.final(conn))
                return
            # a client adapter's list workload: one list per worker
            keys = [f"{self.workload.prefix}:{p}" for p in range(self.clients)]
            lists = {key: [int(v) for v in conn.lrange(key, 0, -1)] for key in keys}
            self.history.add("final", node=master.name, checked=len(keys), absent=[], counters={}, lists=lists)
