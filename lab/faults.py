"""Fault injection: every fault is recorded in the lab's state and reverted by its context manager,
by ``lab heal`` and by ``lab down``, so a crashed test never leaves a frozen node or a DROP rule."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from lab import state
from lab.backends import get_backend, log_tails
from lab.capabilities import accepts
from lab.errors import LabError
from lab.lock import lab_lock
from lab.spec import LabSpec, Node
from lab.topology import node_client, observe
from lab.waits import WaitTimeout, wait_for

KINDS = ("kill", "stop", "freeze", "isolate")


@dataclass(frozen=True)
class Fault:
    kind: str
    node: str
    peers: tuple[str, ...] = field(default_factory=tuple)


def recorded(spec: LabSpec) -> list[Fault]:
    raw = state.load_raw(spec.base_dir.parent, spec.name).get("faults", [])
    return [Fault(f["kind"], f["node"], tuple(f.get("peers", ()))) for f in raw]


def _save(spec: LabSpec, faults: list[Fault]) -> None:
    state.update(spec, faults=[asdict(f) for f in faults])


def isolated_nodes(spec: LabSpec) -> set[str]:
    return {f.node for f in recorded(spec) if f.kind == "isolate"}


def locked(spec: LabSpec, command: str) -> AbstractContextManager[None]:
    """The lab's lock (see lab.lock), for a command that changes the lab."""
    return lab_lock(spec.base_dir.parent, spec.base_dir.name, command)


def forget(spec: LabSpec, nodes: list[str]) -> None:
    """Drop recorded kill/stop faults of nodes that were started again."""
    _save(spec, [f for f in recorded(spec) if not (f.kind in ("kill", "stop") and f.node in nodes)])


def inject(spec: LabSpec, kind: str, node_name: str, peers: list[str] | None = None) -> Fault:
    """Apply a fault now and record it. ``peers`` (isolate only) defaults to every other node."""
    with locked(spec, f"{kind} {node_name}"):
        return _inject(spec, kind, node_name, peers)


def unsupported_by_builds(spec: LabSpec, kind: str) -> str | None:
    """Why the lab's server builds rule a fault out, or None. Local isolation tells a node's peers
    from its clients by source address, which a build without bind-source-addr (Redis 6.2) does
    not set: its peers connect from 127.0.0.1, like every client."""
    if kind != "isolate" or spec.layout != "local":
        return None
    for node in spec.redis_nodes + spec.sentinels:
        build = spec.server(node)
        if build is not None and not accepts(build, "bind-source-addr"):
            return (
                f"{node.name} runs {build.name}, which cannot bind its outgoing connections to its own address "
                "(bind-source-addr, Redis 7.0+): its peers cannot be told from its clients on loopback "
                "(the compose backend isolates any build)"
            )
    return None


def _inject(spec: LabSpec, kind: str, node_name: str, peers: list[str] | None) -> Fault:
    if kind not in KINDS:
        raise LabError(f"unknown fault {kind!r} (choose from: {', '.join(KINDS)})")
    backend = get_backend(spec.backend)
    why = backend.unsupported(kind)
    if why:
        raise LabError(f"{kind} is not supported by the {spec.backend} backend here: {why}")
    if why := unsupported_by_builds(spec, kind):
        raise LabError(f"{kind} is not possible in lab {spec.name}: {why}")
    node = spec.node(node_name)
    peer_nodes = [spec.node(p) for p in peers] if peers else [n for n in spec.nodes if n != node]
    fault = Fault(kind, node.name, tuple(p.name for p in peer_nodes) if kind == "isolate" else ())
    if kind == "kill":
        backend.signal_node(spec, node, signal.SIGKILL)
    elif kind == "stop":
        backend.signal_node(spec, node, signal.SIGTERM)
    elif kind == "freeze":
        backend.signal_node(spec, node, signal.SIGSTOP)
    else:
        backend.isolate(spec, node, peer_nodes)
    _save(spec, [*recorded(spec), fault])
    return fault


def revert(spec: LabSpec, fault: Fault, *, rejoin: bool = True) -> None:
    """Undo one fault (restart a killed/stopped node, thaw, remove isolation rules); forget it.

    ``rejoin``: a data node that comes back as a stale master (restarted from its file, thawed, or
    reconnected after a partition) is pointed at the current master at once and its clients are
    disconnected, as Sentinel would do seconds later. A drill passes False to measure what
    Sentinel alone does."""
    with locked(spec, f"revert {fault.kind} {fault.node}"):
        _revert(spec, fault, rejoin)


def _revert(spec: LabSpec, fault: Fault, rejoin: bool = True) -> None:
    backend = get_backend(spec.backend)
    node = spec.node(fault.node)
    if fault.kind in ("kill", "stop"):
        if backend.node_state(spec, node) == "down":
            backend.start(spec, [node])
    elif fault.kind == "freeze":
        if backend.node_state(spec, node) == "frozen":
            backend.signal_node(spec, node, signal.SIGCONT)
    else:
        backend.heal_isolation(spec, node, [spec.node(p) for p in fault.peers])
    if rejoin and node.kind == "redis" and backend.node_state(spec, node) == "up":
        rejoin_as_replica(spec, node)
    _save(spec, [f for f in recorded(spec) if f != fault])


def restart(spec: LabSpec, node: Node) -> None:
    """Stop and start a node through its backend; a data node rejoins the current master."""
    with locked(spec, f"restart {node.name}"):
        backend = get_backend(spec.backend)
        backend.stop(spec, [node])
        backend.start(spec, [node])
        if node.kind == "redis":
            rejoin_as_replica(spec, node)


def rejoin_as_replica(spec: LabSpec, node: Node, *, disconnect: bool = True) -> None:
    """A data node that believes it is a master while the Sentinels name another (restarted from its
    rendered file, thawed, reconnected after a partition): point it at the current master at once,
    as an operator would, instead of leaving it writable until Sentinel converts it (Sentinel waits
    up to 8 s). Like Sentinel's own conversion (MULTI, REPLICAOF, CONFIG REWRITE, CLIENT KILL), its
    normal and pub/sub clients are disconnected, so they rediscover the master instead of meeting
    READONLY on every write (a client that only reconnects on errors would never leave)."""
    master = observe(spec).master
    if master is None or master == (node.host, node.port):
        return
    with node_client(spec, node, timeout=2) as conn:
        info = conn.info("replication")
        if info.get("role") == "slave" and (info.get("master_host"), int(info.get("master_port", 0))) == master:
            return
        pipe = conn.pipeline(transaction=True)
        pipe.replicaof(*master)
        pipe.config_rewrite()
        pipe.execute()
    if disconnect:
        disconnect_clients(spec, node)


def disconnect_clients(spec: LabSpec, node: Node) -> None:
    """CLIENT KILL TYPE normal and pubsub (this connection is spared: SKIPME yes). A node that has just
    restarted and turned replica may drop a new connection once (a TLS handshake cut short, seen in CI):
    connecting is retried for a few seconds."""

    def kill() -> tuple[bool, str]:
        try:
            with node_client(spec, node, timeout=2) as conn:
                for kind in ("normal", "pubsub"):
                    conn.execute_command("CLIENT", "KILL", "TYPE", kind)
        except redis.ConnectionError as exc:
            return False, str(exc)
        return True, ""

    wait_for(kill, what=f"{node.name} to disconnect its clients", timeout=5, interval=0.1)


def heal(spec: LabSpec) -> list[Fault]:
    """Revert every recorded fault, then anything a crash left unrecorded (frozen or dead nodes, rules)."""
    with locked(spec, "heal"):
        return _heal(spec)


def _heal(spec: LabSpec) -> list[Fault]:
    undone = []
    for fault in reversed(recorded(spec)):
        revert(spec, fault)
        undone.append(fault)
    backend = get_backend(spec.backend)
    backend.heal_isolation(spec)
    for node in spec.nodes:
        current = backend.node_state(spec, node)
        if current in ("frozen", "down"):
            fault = Fault("freeze" if current == "frozen" else "kill", node.name)
            revert(spec, fault)
            undone.append(fault)
    return undone


@contextmanager
def injected(spec: LabSpec, kind: str, node: str, peers: list[str] | None = None) -> Iterator[Fault]:
    """``with injected(spec, 'freeze', 'redis-1'):`` - the fault is reverted on exit, whatever happens."""
    fault = inject(spec, kind, node, peers)
    try:
        yield fault
    finally:
        if fault in recorded(spec):
            revert(spec, fault)


def current_master(spec: LabSpec, timeout: float = 30.0) -> Node:
    """The data node every reachable Sentinel names as master (waits until they agree)."""

    def probe() -> tuple[bool, Any]:
        obs = observe(spec)
        return obs.master is not None, obs.master

    addr = wait_for(probe, what="the Sentinels to agree on a master", timeout=timeout)
    return next(n for n in spec.redis_nodes if (n.host, n.port) == addr)


def failover(spec: LabSpec, safe: bool = True, timeout: float = 30.0) -> tuple[Node, Node]:
    """Manual failover through Sentinel; returns (old master, new master).

    ``safe`` (the default) loses no acknowledged write: writes on the master are paused
    (CLIENT PAUSE WRITE: clients wait, they do not fail), the replicas are let catch up, SENTINEL
    FAILOVER runs, and the pause ends only once the old master is a replica, so a write held
    during the switch fails with READONLY (the client retries on the new master) instead of
    being accepted by the old master and then lost. ``safe=False`` is a bare SENTINEL FAILOVER.
    """
    with locked(spec, "failover"):
        return _failover(spec, safe, timeout)


#: How long to keep asking while the Sentinels answer NOGOODSLAVE: a Sentinel's view of a replica can
#: be stale (replicas' INFO is refreshed every 10 s; a replica that just resynced, or a PING answered
#: late on a busy machine, makes it unfit for a moment). Seen in CI right after a lab had healed.
NOGOODSLAVE_RETRY_S = 12.0

#: Sentinel's TILT period (SENTINEL_TILT_PERIOD): a Sentinel whose timer stalled for 2 s (a starved or
#: paused process, a slow fsync, a clock jump) only watches for 30 s. In TILT it still answers OK to
#: SENTINEL FAILOVER, then does nothing until TILT ends (measured: the switch came 31.5 s later).
TILT_PERIOD_S = 30.0


class _Stalled(LabError):
    """The Sentinel that accepted the failover will not carry it out: ask another one."""


def _in_tilt(spec: LabSpec, sentinel: Node) -> bool:
    with node_client(spec, sentinel, timeout=2) as conn:
        return bool(int(conn.info("sentinel").get("sentinel_tilt", 0)))


def _sentinels_to_ask(spec: LabSpec, exclude: list[Node]) -> tuple[list[Node], list[str]]:
    """Running Sentinels that would act on SENTINEL FAILOVER now, and why each other one would not."""
    backend = get_backend(spec.backend)
    usable: list[Node] = []
    why_not: list[str] = []
    for sentinel in spec.sentinels:
        if sentinel in exclude or backend.node_state(spec, sentinel) != "up":
            continue
        try:
            tilted = _in_tilt(spec, sentinel)
        except redis.RedisError as exc:
            why_not.append(f"{sentinel.name}: {exc}")
            continue
        if tilted:
            why_not.append(f"{sentinel.name} is in TILT mode (it would accept and do nothing for up to 30 s)")
        else:
            usable.append(sentinel)
    return usable, why_not


def _ask_for_failover(spec: LabSpec, sentinel: Node) -> str:
    """SENTINEL FAILOVER on ``sentinel``: "" once it accepted (or is already failing the master over:
    INPROG), its NOGOODSLAVE answer (which starts nothing) otherwise; any other refusal is a LabError."""
    try:
        with node_client(spec, sentinel, timeout=2) as sconn:
            sconn.execute_command("SENTINEL", "FAILOVER", spec.master_name)
    except redis.ResponseError as exc:
        if str(exc).startswith("INPROG"):
            return ""
        if not str(exc).startswith("NOGOODSLAVE"):
            raise LabError(f"{sentinel.name} refused SENTINEL FAILOVER: {exc}") from exc
        return f"{sentinel.name}: {exc}"
    return ""


def _failover(spec: LabSpec, safe: bool, timeout: float) -> tuple[Node, Node]:
    old = current_master(spec)
    old_addr = (old.host, old.port)
    master_conn = node_client(spec, old, timeout=2)
    pause_ms = int(timeout * 1000)
    refusals: list[str] = []  # NOGOODSLAVE answers so far; each ask goes to the next usable Sentinel
    accepted_by: list[Node] = []  # Sentinels that accepted and then would not act (then the one acting)
    first_refusal: list[float] = []

    def accepted() -> tuple[bool, str]:
        if accepted_by:  # asking again: unless the Sentinels are already failing the paused master over
            seen = observe(spec)
            busy = [v.node for v in seen.sentinels if v.reachable and "failover_in_progress" in v.master_flags]
            busy = [n for n in busy if n not in accepted_by]
            if busy:
                accepted_by.append(busy[0])
            if busy or seen.master != old_addr:
                return True, "a switch is under way"
        usable, why_not = _sentinels_to_ask(spec, accepted_by)
        if not usable and not why_not:
            if accepted_by:
                stalled = ", ".join(n.name for n in accepted_by)
                raise LabError(f"no other Sentinel is running ({stalled} accepted SENTINEL FAILOVER and did not act)")
            raise LabError("no Sentinel is running: none can fail the master over")
        if not usable:  # every Sentinel in TILT (a machine-wide stall): wait it out, not paused
            return False, "; ".join(why_not)
        sentinel = usable[len(refusals) % len(usable)]
        if safe:
            try:
                master_conn.client_pause(pause_ms, all=False)
                _wait_replicas_caught_up(master_conn, len(spec.redis_nodes) - 1, timeout)
            except redis.ConnectionError as exc:  # a Sentinel demoting it drops its clients: look again
                return False, f"{old.name}: {exc}"
        refused = _ask_for_failover(spec, sentinel)
        if not refused:
            accepted_by.append(sentinel)
            return True, sentinel.name
        refusals.append(refused)
        if safe:  # not paused while waiting: to the Sentinels a paused master soon looks down
            master_conn.client_unpause()
        first_refusal[:] = first_refusal or [time.monotonic()]
        if time.monotonic() - first_refusal[0] >= NOGOODSLAVE_RETRY_S:
            raise LabError(f"no Sentinel would fail over within {NOGOODSLAVE_RETRY_S:g}s (last: {refused})")
        return False, refused

    def switched() -> tuple[bool, Any]:
        seen = observe(spec)
        new = seen.master
        if new == old_addr:  # every Sentinel still names the old master: is the one that accepted acting?
            acting = accepted_by[-1]
            view = next(v for v in seen.sentinels if v.node == acting)
            if view.reachable and view.master == old_addr and "failover_in_progress" not in view.master_flags:
                raise _Stalled(f"{acting.name} ended the failover with {old.name} still master")  # -failover-abort-*
            tilted = False
            with suppress(redis.RedisError):
                tilted = _in_tilt(spec, acting)
            if tilted:
                raise _Stalled(f"{acting.name} entered TILT mode after accepting")
        if new is None or new == old_addr:  # (None: the Sentinels disagree, a switch is under way)
            return False, new
        # A Sentinel that has not heard of the failover yet can turn the promoted replica straight back
        # into a replica (+convert-to-slave); demoting the old master under it would leave no master at
        # all (seen in CI: the two replicating from each other). Wait until the named node is a master.
        promoted = next((v for v in seen.redis if (v.node.host, v.node.port) == new), None)
        return promoted is not None and promoted.role == "master", new

    try:
        stalls: list[str] = []
        while True:
            try:
                asking = TILT_PERIOD_S + 5  # NOGOODSLAVE ends sooner (in accepted()); TILT takes this long
                wait_for(accepted, what="a Sentinel to accept SENTINEL FAILOVER", timeout=asking, interval=0.5)
            except WaitTimeout as exc:
                raise LabError(f"no Sentinel would fail over: {exc}") from None
            try:
                addr = wait_for(
                    switched,
                    what=f"the Sentinels to name a new master ({accepted_by[-1].name} accepted)",
                    timeout=timeout,
                    detail=lambda: _sentinel_report(spec),
                )
                break
            except _Stalled as exc:
                stalls.append(str(exc))
                if len(stalls) > len(spec.sentinels):
                    raise LabError(f"no Sentinel carried out the failover ({'; '.join(stalls)})") from None
                refusals.clear()
        if safe:
            rejoin_as_replica(spec, old, disconnect=False)
    finally:
        if safe:
            with suppress(redis.RedisError):
                master_conn.client_unpause()  # writes held meanwhile now fail with READONLY: definite
        master_conn.close()
    if safe:
        # Then, as Sentinel's own demotion does, drop the old master's clients: they rediscover the
        # new master instead of meeting READONLY on every write until they reconnect by themselves.
        disconnect_clients(spec, old)
    return old, next(n for n in spec.redis_nodes if (n.host, n.port) == addr)


def _sentinel_report(spec: LabSpec) -> str:
    """What each Sentinel names and flags, and the tail of its log: why a failover did not finish."""
    seen = observe(spec)
    lines = [
        f"{v.node.name}: master {v.master} flags {v.master_flags}" if v.reachable else f"{v.node.name}: {v.error}"
        for v in seen.sentinels
    ]
    return "\n".join(lines) + "\n" + log_tails(spec, 12, spec.sentinels)


def _wait_replicas_caught_up(conn: redis.Redis, replicas: int, timeout: float) -> None:
    def probe() -> tuple[bool, str]:
        info = conn.info("replication")
        offset = int(info["master_repl_offset"])
        lagging = [
            f"{v['ip']}:{v['port']} at {v['offset']}"
            for k, v in info.items()
            if k.startswith("slave") and isinstance(v, dict) and int(v["offset"]) != offset
        ]
        online = sum(1 for k, v in info.items() if k.startswith("slave") and isinstance(v, dict))
        return not lagging and online >= min(replicas, 1), f"master at {offset}, lagging: {lagging or 'none'}"

    wait_for(probe, what="replicas to reach the master's offset", timeout=timeout)
