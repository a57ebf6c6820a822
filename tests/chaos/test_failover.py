"""Failover drills against a real lab (`pytest -m chaos`). Each drill breaks the lab for real and
asserts the outcome; the healthy_lab fixture heals it (or replaces it) before the next one."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from lab import control, faults
from lab.backends import get_backend
from lab.drill import (
    TRANSIENT,
    config_set,
    first_write_after,
    kill_master_unavailability,
    master_client,
    wait_converged,
    write_acked,
)
from lab.pytest_plugin import require_fault
from lab.spec import LabSpec, Node
from lab.topology import client, observe
from lab.waits import wait_for

pytestmark = [pytest.mark.chaos, pytest.mark.integration]


def role_of(spec: LabSpec, node: Node) -> tuple[str, str]:
    """(role, 'host:port' of its master or '') as the node itself reports."""
    with client(node.host, node.port, spec.password) as conn:
        info = conn.info("replication")
    return str(info["role"]), f"{info.get('master_host', '')}:{info.get('master_port', '')}".strip(":")


def wait_replica_of(spec: LabSpec, node: Node, master: Node, timeout: float = 30) -> None:
    def probe() -> tuple[bool, object]:
        try:
            seen = role_of(spec, node)
        except (redis.RedisError, OSError) as exc:
            return False, exc
        return seen == ("slave", master.address), seen

    wait_for(probe, what=f"{node.name} to replicate from {master.name}", timeout=timeout)


def wait_sentinels_agree(spec: LabSpec, master: Node, timeout: float = 30) -> None:
    def probe() -> tuple[bool, object]:
        views = observe(spec).sentinels
        named = [v.master for v in views]
        return all(m == (master.host, master.port) for m in named), named

    wait_for(probe, what=f"every Sentinel to name {master.name}", timeout=timeout)


def wait_new_master(spec: LabSpec, old: Node, timeout: float = 30) -> Node:
    def probe() -> tuple[bool, object]:
        agreed = observe(spec).master
        return agreed is not None and agreed != (old.host, old.port), agreed

    addr = wait_for(probe, what=f"a master other than {old.name}", timeout=timeout)
    return next(n for n in spec.redis_nodes if (n.host, n.port) == addr)


def test_master_sigkill_promotes_a_replica_and_everyone_follows(healthy_lab: LabSpec, drill_events) -> None:
    spec = healthy_lab
    events = drill_events(spec)
    write_acked(spec, {"drill:acked": "yes"})

    unavailable, old = kill_master_unavailability(spec)
    # One master that everyone follows: whichever replica won (Sentinel may fail over twice).
    new = wait_converged(spec)
    print(
        f"\nkill -9 {old.name} -> first write after {unavailable:.2f}s, {new.name} master "
        f"(down-after {spec.down_after_ms} ms)"
    )
    assert new != old
    for node in spec.redis_nodes:
        if node != old:
            with client(node.host, node.port, spec.password) as conn:
                assert conn.get("drill:acked") == "yes", f"a WAIT-ed write is on {node.name}"
    assert len(events.failovers()) >= 1

    # The old master returns from its rendered file (it believes it is a master); Sentinel converts it.
    get_backend(spec.backend).start(spec, [old])
    settled = wait_converged(spec)
    assert settled != old and role_of(spec, old) == ("slave", settled.address)
    faults.revert(spec, faults.Fault("kill", old.name))
    control.wait_healthy(spec, timeout=20)


def test_zombie_master_is_demoted_and_its_writes_are_lost(healthy_lab: LabSpec, drill_events) -> None:
    """SIGSTOP the master past down-after, let the Sentinels fail over, SIGCONT it: a client still
    connected to it writes until it is demoted. Count the acknowledged writes that are lost."""
    spec = healthy_lab
    drill_events(spec)
    old = faults.current_master(spec)
    stale = client(old.host, old.port, spec.password, timeout=2)
    stale.ping()
    with faults.injected(spec, "freeze", old.name):
        new = wait_new_master(spec, old)
    acked: list[str] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            stale.set(f"zombie:{len(acked)}", "1")
            acked.append(f"zombie:{len(acked)}")
        except TRANSIENT:
            break
    stale.close()
    new = wait_converged(spec)
    assert role_of(spec, old) == ("slave", new.address)
    with client(new.host, new.port, spec.password) as conn:
        survived = sum(int(conn.exists(*acked[i : i + 500])) for i in range(0, len(acked), 500))
    print(
        f"\nzombie {old.name}: {len(acked)} writes acknowledged after thaw, {len(acked) - survived} lost "
        f"(min-replicas-to-write 0 lets a demoted-to-be master accept them)"
    )
    assert len(acked) > 0, "the thawed master accepted writes before Sentinel demoted it"
    assert survived == 0, "writes taken by the zombie are discarded when it resyncs from the new master"


def test_safe_manual_failover_loses_no_increment(healthy_lab: LabSpec, drill_events) -> None:
    spec = healthy_lab
    drill_events(spec)
    conn = master_client(spec)
    conn.set("drill:counter", 0)
    acked = 0
    errors = 0
    stop = threading.Event()

    def incr_loop() -> None:
        nonlocal acked, errors
        while not stop.is_set():
            try:
                conn.incr("drill:counter")
                acked += 1
            except TRANSIENT:
                errors += 1
                time.sleep(0.005)

    def increments(at_least: int) -> None:
        wait_for(lambda: (acked >= at_least, acked), what=f"{at_least} acknowledged increments", timeout=20)

    worker = threading.Thread(target=incr_loop)
    worker.start()
    try:
        increments(200)  # the loop runs at full speed before the failover...
        old, new = faults.failover(spec, safe=True)
        increments(acked + 200)  # ...and again on the new master after it
    finally:
        stop.set()
        worker.join()
    final = int((first_write_after(conn, time.monotonic(), "drill:after") >= 0 and conn.get("drill:counter")) or 0)
    conn.close()
    print(
        f"\nfailover {old.name} -> {new.name}: {acked} increments acknowledged, counter {final}, "
        f"{errors} transient errors retried"
    )
    assert new != old and acked > 100
    assert final == acked, "every acknowledged INCR is in the new master's counter"
    settled = wait_converged(spec)
    assert settled != old and role_of(spec, old) == ("slave", settled.address)


def test_replica_priority_zero_is_never_promoted(lab_factory, profile_file) -> None:
    spec = lab_factory(profile_file(topology={"replica_priority": [100, 0, 100]}), tag="prio")
    with client(spec.node("redis-2").host, 6379, spec.password) as conn:
        assert conn.config_get("replica-priority")["replica-priority"] == "0"
    _, old = kill_master_unavailability(spec)
    new = faults.current_master(spec)
    assert old.name == "redis-1"
    assert new.name == "redis-3", "redis-2 has replica-priority 0: Sentinel must pick redis-3"
    wait_replica_of(spec, spec.node("redis-2"), new)


def test_no_failover_without_quorum_then_failover_once_sentinels_return(healthy_lab: LabSpec, drill_events) -> None:
    spec = healthy_lab
    drill_events(spec)
    s1, s2, s3 = spec.sentinels
    old = faults.current_master(spec)
    faults.inject(spec, "kill", s2.name)
    faults.inject(spec, "kill", s3.name)
    with client(s1.host, s1.port, spec.sentinel_password) as sconn:

        def ckquorum() -> tuple[bool, str]:
            try:
                return False, str(sconn.execute_command("SENTINEL", "CKQUORUM", spec.master_name))
            except redis.ResponseError as exc:
                return "NOQUORUM" in str(exc), str(exc)

        # The dead Sentinels stop counting once sentinel-1 marks them down (after down-after).
        wait_for(ckquorum, what="CKQUORUM to answer NOQUORUM", timeout=10)
        faults.inject(spec, "kill", old.name)

        def master_flags() -> tuple[bool, str]:
            flags = str(sconn.sentinel_master(spec.master_name)["flags"])
            return "s_down" in flags, flags

        wait_for(master_flags, what="sentinel-1 to flag the dead master s_down", timeout=10)
        # Proving an absence takes a wait: two more down-after periods, in which a quorum would have
        # reached o_down and started the failover (it does within about one on a healthy lab).
        time.sleep(spec.down_after_ms / 1000 * 2)
        assert sconn.sentinel_get_master_addr_by_name(spec.master_name) == (old.host, old.port)
        flags = sconn.sentinel_master(spec.master_name)["flags"]
    assert "s_down" in str(flags) and "o_down" not in str(flags), flags
    for replica in (n for n in spec.redis_nodes if n != old):
        assert role_of(spec, replica)[0] == "slave", f"{replica.name} was promoted without a quorum"

    for sentinel in (s2, s3):
        faults.revert(spec, faults.Fault("kill", sentinel.name))
    wait_new_master(spec, old, timeout=30)
    new = wait_converged(spec)
    print(f"\nquorum back: {new.name} promoted")


def test_sentinel_down_during_failover_learns_the_new_master(healthy_lab: LabSpec, drill_events) -> None:
    spec = healthy_lab
    drill_events(spec)
    late = spec.node("sentinel-3")
    faults.inject(spec, "kill", late.name)
    _, old = kill_master_unavailability(spec)
    new = wait_new_master(spec, old)
    faults.revert(spec, faults.Fault("kill", late.name))
    new = wait_converged(spec)

    def probe() -> tuple[bool, object]:
        with client(late.host, late.port, spec.sentinel_password) as conn:
            try:
                named = conn.sentinel_get_master_addr_by_name(spec.master_name)
            except (redis.RedisError, OSError) as exc:
                return False, exc
        return named == (new.host, new.port), named

    wait_for(probe, what=f"{late.name} to learn that {new.name} is master", timeout=30)


def _partition_loss(spec: LabSpec, min_replicas: int, max_lag: int) -> tuple[int, int, float]:
    """Isolate the master from replicas and Sentinels while a client keeps writing to it.
    Returns (writes acknowledged by the isolated master, of which lost, seconds it kept accepting)."""
    old = faults.current_master(spec)
    writer = client(old.host, old.port, spec.password, timeout=1)
    acked: list[str] = []
    last_ack = 0.0
    guard = config_set(spec, min_replicas_to_write=min_replicas, min_replicas_max_lag=max_lag)
    with guard, faults.injected(spec, "isolate", old.name):
        started = time.monotonic()
        new: Node | None = None
        while time.monotonic() - started < 6:
            try:
                key = f"partition:{min_replicas}:{len(acked)}"
                writer.set(key, "1")
                acked.append(key)
                last_ack = time.monotonic() - started
            except TRANSIENT:
                time.sleep(0.01)
        new = wait_new_master(spec, old)
        writer.close()
        faults.rejoin_as_replica(spec, old)
        new = wait_converged(spec)
        assert new != old and role_of(spec, old) == ("slave", new.address)
        with client(new.host, new.port, spec.password) as conn:
            survived = sum(int(conn.exists(*acked[i : i + 500])) for i in range(0, len(acked), 500))
    return len(acked), len(acked) - survived, last_ack


def test_partitioned_master_write_loss_is_bounded_by_min_replicas(healthy_lab: LabSpec, drill_events) -> None:
    spec = healthy_lab
    drill_events(spec)
    require_fault(spec, "isolate")
    max_lag = 1
    acked_open, lost_open, window_open = _partition_loss(spec, 0, max_lag)
    faults.heal(spec)
    control.wait_healthy(spec, timeout=30)
    acked_guarded, lost_guarded, window_guarded = _partition_loss(spec, 1, max_lag)
    print(
        f"\npartitioned master, 6 s: min-replicas-to-write 0 -> {lost_open}/{acked_open} acked writes lost, "
        f"accepted for {window_open:.2f}s; min-replicas-to-write 1 (max-lag {max_lag}) -> "
        f"{lost_guarded}/{acked_guarded} lost, accepted for {window_guarded:.2f}s"
    )
    assert lost_open > 0 and window_open > 5, "without the guard the isolated master accepts writes throughout"
    assert lost_guarded < lost_open
    assert window_guarded <= max_lag + 2.0, "with the guard the master refuses writes about max-lag after the cut"
