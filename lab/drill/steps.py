"""Drill helpers shared by the chaos tests and the benchmarks: Sentinel-aware clients and
client-visible unavailability."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis

from lab import faults, nodes
from lab.backends import get_backend
from lab.errors import LabError
from lab.spec import LabSpec, Node
from lab.topology import node_client, observe, sentinel_for
from lab.waits import wait_for

#: What a client sees while a master is gone or being replaced.
TRANSIENT = (redis.ConnectionError, redis.TimeoutError, redis.ReadOnlyError, redis.ResponseError)


def write_acked(spec: LabSpec, values: dict[str, Any], timeout: float = 10.0) -> Node:
    """MSET ``values`` on the current master and wait until every replica has them (WAIT), so a
    drill can tell a lost write from one that never reached a replica. Returns the master."""
    master = nodes.current_master(spec)
    replicas = len(spec.redis_nodes) - 1
    # The socket must outlast WAIT's own timeout: on a busy machine the ack can take a while.
    with node_client(spec, master, timeout=timeout + 2) as conn:
        conn.mset(values)
        acked = int(conn.execute_command("WAIT", replicas, int(timeout * 1000)))
    if acked < replicas:
        raise AssertionError(f"only {acked} of {replicas} replicas acknowledged the write within {timeout:g}s")
    return master


@contextmanager
def config_set(spec: LabSpec, **values: str | int) -> Iterator[None]:
    """``with config_set(spec, min_replicas_to_write=1):`` CONFIG SET on every data node for the
    block, restored to what each node ran before, whatever happens in the block. Each node's change
    is a recorded fault (lab.faults.set_config) from before it is applied: ``lab heal`` restores what
    a killed drill left, an interrupted command restores it at once."""
    with _changed(spec, values, sentinels=False):
        yield


@contextmanager
def sentinel_set(spec: LabSpec, **values: str | int) -> Iterator[None]:
    """config_set for the Sentinels: SENTINEL SET on each, for the master they monitor."""
    with _changed(spec, values, sentinels=True):
        yield


@contextmanager
def _changed(spec: LabSpec, values: dict[str, str | int], sentinels: bool) -> Iterator[None]:
    changed = faults.set_config(spec, values, sentinels=sentinels)
    try:
        yield
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM: the command's undo log restores them and says so
        raise
    except BaseException:
        faults.restore_settings(spec, changed)  # (what failed stays recorded; the error in flight is the news)
        raise
    failed = faults.restore_settings(spec, changed)
    if failed:
        raise LabError("; ".join(failed))


def master_client(spec: LabSpec) -> redis.Redis:
    """A client of the current master that follows failovers (rediscovers through Sentinel)."""
    conn: redis.Redis = sentinel_for(spec).master_for(spec.master_name)
    return conn


def first_write_after(conn: redis.Redis, started: float, key: str, timeout: float = 60.0) -> float:
    """Retry a SET until it is acknowledged; seconds from ``started`` (time.monotonic) to that ack."""
    deadline = started + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            conn.set(key, time.time())
            return time.monotonic() - started
        except TRANSIENT as exc:
            last = exc
            time.sleep(0.01)
    raise TimeoutError(f"no write acknowledged within {timeout}s after the fault (last error: {last})")


def kill_master_unavailability(spec: LabSpec) -> tuple[float, Node]:
    """SIGKILL the current master; return (seconds until a Sentinel-aware client writes again, old master).

    The killed node is left down (recorded as a fault): `faults.heal` / the healthy_lab fixture restore it.
    """
    old = nodes.current_master(spec)
    conn = master_client(spec)
    try:
        conn.set("drill:probe", "before")
        started = time.monotonic()
        faults.inject(spec, "kill", old.name)
        return first_write_after(conn, started, "drill:probe"), old
    finally:
        conn.close()


def wait_converged(spec: LabSpec, timeout: float = 30.0) -> Node:
    """Wait until the lab has settled on one master, whichever node won and however many failovers
    it took: every reachable Sentinel names it with no failover in progress, it reports role master,
    and every other running data node replicates from it with the link up. Returns that master."""
    backend = get_backend(spec.backend)

    def probe() -> tuple[bool, Any]:
        obs = observe(spec)
        agreed = obs.master
        if agreed is None:
            return False, f"Sentinels name {sorted({str(s.master) for s in obs.sentinels if s.reachable})}"
        busy = [s.node.name for s in obs.sentinels if s.reachable and "failover_in_progress" in s.master_flags]
        if busy:
            return False, f"failover in progress ({', '.join(busy)})"
        for view in obs.redis:
            if (view.node.host, view.node.port) == agreed:
                if view.role != "master":
                    return False, f"{view.node.name} is named master but reports {view.role or 'nothing'}"
            elif view.reachable:
                if (view.role, view.master_host, view.master_port, view.link_up) != ("slave", *agreed, True):
                    return False, f"{view.node.name} is {view.role} of {view.master_host}:{view.master_port}"
            elif backend.node_state(spec, view.node) != "down":
                return False, f"{view.node.name} runs but does not answer"
        return True, agreed

    addr = wait_for(probe, what="one master that every node and Sentinel follows", timeout=timeout)
    return next(n for n in spec.redis_nodes if (n.host, n.port) == addr)
