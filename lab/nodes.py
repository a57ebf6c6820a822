"""Operations on a lab's nodes that the lifecycle, the faults and the drills share: the lab's lock, which
node is master, making a stale master a replica, disconnecting clients, restarting a node.

A data node that comes back believing it is a master while the Sentinels name another (restarted from
its file, thawed, reconnected after a partition) is pointed at the current master at once
(``rejoin_as_replica``); an interrupted ``restart`` starts the node again and makes it a replica, never
leaving it down unrecorded or up as a second master."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import redis

from lab import interrupts
from lab.backends import get_backend
from lab.errors import LabError
from lab.lock import lab_lock
from lab.spec import LabSpec, Node
from lab.tls import check_server_files
from lab.topology import node_client, observe
from lab.waits import wait_for


def locked(spec: LabSpec, command: str) -> AbstractContextManager[None]:
    """The lab's lock (see lab.lock), for a command that changes the lab."""
    return lab_lock(spec.base_dir.parent, spec.base_dir.name, command)


def settled_master(spec: LabSpec, timeout: float = 20.0) -> tuple[str, int]:
    """The master every reachable Sentinel names, once none of them is still failing over or sees it
    down (a node restarted mid-failover runs as a master the Sentinels are about to replace). Undos run it in
    a worker thread (lab.interrupts.uninterrupted): in the main thread the interrupt being handled would end
    the wait at once."""

    def probe() -> tuple[bool, Any]:
        obs = observe(spec)
        views = [s for s in obs.sentinels if s.reachable]
        settled = obs.master is not None and all(s.master_flags == "master" for s in views)
        return settled, obs.master if settled else [s.master_flags for s in views]

    settled: tuple[str, int] = wait_for(
        probe, what="the Sentinels to settle on a master", timeout=timeout, interval=0.1
    )
    return settled


def rejoin_stale(spec: LabSpec, node: Node) -> str | None:
    """A data node running as a master while the Sentinels name another is made a replica of that one
    (rejoin_as_replica): what was done, or None when it was not a stale master."""
    if node.kind != "redis" or get_backend(spec.backend).node_state(spec, node) != "up":
        return None
    with node_client(spec, node, timeout=2) as conn:
        if conn.info("replication").get("role") != "master":
            return None
    try:
        master = settled_master(spec)
    except LabError as exc:
        raise LabError(f"{node.name} runs as a master and it is not known whether it should: {exc}") from None
    if master == (node.host, node.port):
        return None
    rejoin_as_replica(spec, node)
    name = next((n.name for n in spec.redis_nodes if (n.host, n.port) == master), f"{master[0]}:{master[1]}")
    return f"made {node.name} (up as a second master) a replica of {name}"


def check_startable(spec: LabSpec) -> None:
    """What a node needs to start that the lab does not re-create (its TLS files) is there and usable."""
    if spec.tls:
        check_server_files(spec.tls_files())


def restart(spec: LabSpec, node: Node) -> None:
    """Stop and start a node through its backend; a data node rejoins the current master."""
    with locked(spec, f"restart {node.name}"):
        backend = get_backend(spec.backend)
        check_startable(spec)  # before the stop: a node that cannot start again is not stopped
        key = f"restart {node.name}"
        # an interrupt between the stop and the rejoin starts it again and makes it a replica: it is never
        # left down unrecorded, or up as a second master
        interrupts.undo_on_interrupt(key, lambda: interrupts.uninterrupted(_finish_restart, spec, node))
        backend.stop(spec, [node])
        backend.start(spec, [node])
        if node.kind == "redis":
            rejoin_as_replica(spec, node)
        interrupts.done(key)


def _finish_restart(spec: LabSpec, node: Node) -> str | None:
    """An interrupted restart's undo: start the node if it is down, make it a replica if it is a stale master."""
    started = get_backend(spec.backend).node_state(spec, node) == "down"
    if started:
        get_backend(spec.backend).start(spec, [node])
    rejoined = rejoin_stale(spec, node)
    if started:
        return f"started {node.name} again" + (f" and {rejoined}" if rejoined else "")
    return rejoined


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

    def point() -> tuple[bool, str]:
        try:
            with node_client(spec, node, timeout=2) as conn:
                info = conn.info("replication")
                if info.get("role") == "slave" and (info.get("master_host"), int(info.get("master_port", 0))) == master:
                    return True, "already its replica"
                pipe = conn.pipeline(transaction=True)
                pipe.replicaof(*master)
                pipe.config_rewrite()
                pipe.execute()
        except redis.BusyLoadingError as exc:  # just restarted, still loading its data (CI, compose): wait
            return False, str(exc)
        return True, "pointed"

    done = wait_for(point, what=f"{node.name} to load its data and take REPLICAOF", timeout=30, interval=0.1)
    if disconnect and done == "pointed":
        disconnect_clients(spec, node)


def unchain_replicas(spec: LabSpec, candidates: list[Node]) -> list[str]:
    """Point every data node of ``candidates`` that replicates from another replica (or a node that is no
    longer master) at the master the Sentinels agree on, as Sentinel itself does only after failover-timeout
    and never while it is in TILT (CI, compose, both cores saturated: an interrupted kill drill's second
    failover left redis-1 behind redis-2, and `lab heal` timed out waiting for Sentinel). The names pointed."""
    master = observe(spec).master
    if master is None:
        return []
    pointed = []
    for node in candidates:
        if node.kind != "redis" or (node.host, node.port) == master:
            continue
        try:
            with node_client(spec, node, timeout=2) as conn:
                info = conn.info("replication")
        except (redis.RedisError, OSError):
            continue  # not answering: what heal waits for next names it
        upstream = (info.get("master_host"), int(info.get("master_port", 0) or 0))
        if info.get("role") == "slave" and upstream != master:
            rejoin_as_replica(spec, node, disconnect=False)  # (its clients read from a replica either way)
            pointed.append(node.name)
    return pointed


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


def unpause_writes(spec: LabSpec, nodes: list[Node]) -> None:
    """CLIENT UNPAUSE on every data node that answers: a `lab failover` killed with SIGKILL leaves its
    CLIENT PAUSE WRITE (up to 30 s) where no undo ran, and heal called such a lab healthy while its
    master blocked every write (hostile tour). Harmless on a node that is not paused."""
    for node in nodes:
        try:
            with node_client(spec, node, timeout=1) as conn:
                conn.execute_command("CLIENT", "UNPAUSE")
        except (redis.RedisError, OSError):
            continue  # it stopped answering meanwhile: what it needs is the revert below


def current_master(spec: LabSpec, timeout: float = 30.0) -> Node:
    """The data node every reachable Sentinel names as master (waits until they agree)."""

    def probe() -> tuple[bool, Any]:
        obs = observe(spec)
        return obs.master is not None, obs.master

    addr = wait_for(probe, what="the Sentinels to agree on a master", timeout=timeout)
    return next(n for n in spec.redis_nodes if (n.host, n.port) == addr)


def wait_caught_up(primary: redis.Redis, replica: redis.Redis, timeout: float = 60) -> None:
    """Wait until ``replica`` has everything ``primary`` (its master) had written when this was called."""
    target = int(primary.info("replication")["master_repl_offset"])

    def probe() -> tuple[bool, str]:
        offset = int(replica.info("replication").get("slave_repl_offset", -1))
        return offset >= target, f"at {offset} of {target}"

    wait_for(probe, what="the replica to catch up with its master", timeout=timeout, interval=0.01)
