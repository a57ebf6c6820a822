"""Persistence scenarios on real servers rendered from the project's template."""

from __future__ import annotations

import signal
import threading
import time

import pytest
import redis

from lab.backends import get_backend
from lab.drill.steps import write_acked
from lab.spec import LabSpec
from lab.topology import client
from lab.waits import wait_for

pytestmark = pytest.mark.integration


def write_timestamped(conn, stop: threading.Event, acked: list[tuple[int, float]]) -> None:
    """Write seq -> time until stopped or the server goes away; record what was acknowledged."""
    seq = 0
    while not stop.is_set():
        try:
            conn.set(f"seq:{seq}", time.time())
        except Exception:
            return
        acked.append((seq, time.monotonic()))
        seq += 1


def kill_while_writing(
    solo, seconds: float = 1.0, at_least: int = 0, patience: float = 30
) -> tuple[list[tuple[int, float]], float]:
    """SIGKILL the server after ``seconds`` of writes, and not before ``at_least`` were acknowledged
    (a machine kept busy acknowledges fewer in a given time: the test needs the writes, not the time)."""
    acked: list[tuple[int, float]] = []
    stop = threading.Event()
    writer = threading.Thread(target=write_timestamped, args=(solo.conn, stop, acked))
    writer.start()
    time.sleep(seconds)
    wait_for(lambda: (len(acked) >= at_least, len(acked)), what=f"{at_least} acknowledged writes", timeout=patience)
    killed_at = time.monotonic()
    solo.kill()
    stop.set()
    writer.join()
    return acked, killed_at


def surviving(solo, acked: list[tuple[int, float]]) -> set[int]:
    keys = [f"seq:{seq}" for seq, _ in acked]
    found = set()
    for i in range(0, len(keys), 1000):
        values = solo.conn.mget(keys[i : i + 1000])
        found |= {acked[i + j][0] for j, v in enumerate(values) if v is not None}
    return found


def test_rdb_snapshot_survives_a_restart(redis_node) -> None:
    solo = redis_node(appendonly="no")
    solo.conn.mset({f"rdb:{i}": i for i in range(1000)})
    solo.conn.save()
    solo.restart()
    assert solo.conn.dbsize() == 1000
    assert solo.conn.get("rdb:999") == "999"


@pytest.mark.one_server
def test_aof_everysec_loses_at_most_about_a_second_on_sigkill(redis_node) -> None:
    solo = redis_node(appendonly="yes", appendfsync="everysec")
    acked, killed_at = kill_while_writing(solo)
    solo.restart()
    found = surviving(solo, acked)
    lost = [(seq, t) for seq, t in acked if seq not in found]
    window = killed_at - min((t for _, t in lost), default=killed_at)
    print(f"\nAOF everysec, SIGKILL after {len(acked)} acked writes: {len(lost)} lost, window {window:.3f}s")
    assert len(found) > 0
    assert window <= 1.5, "everysec bounds the loss to about one second"


def test_aof_always_loses_nothing_acknowledged(redis_node) -> None:
    solo = redis_node(appendonly="yes", appendfsync="always")
    acked, _ = kill_while_writing(solo, seconds=0.5, at_least=200)
    solo.restart()
    found = surviving(solo, acked)
    print(f"\nAOF always, SIGKILL after {len(acked)} acked writes: {len(acked) - len(found)} lost")
    assert len(acked) >= 200
    assert len(found) == len(acked)


#: Sentinel must not act while the master restarts (an init system's restart takes well under 5 s,
#: but a container start alone can take 1 s here): the point is what the restarted master does.
SLOW_SENTINEL = {"down_after_milliseconds": 5000, "failover_timeout": 10000}


def _fast_master_restart_keeps(spec: LabSpec) -> int:
    """Write 500 keys, SIGKILL the master and restart it before Sentinel reacts; keys left on the replicas."""
    master = write_acked(spec, {f"precious:{i}": i for i in range(500)})
    backend = get_backend(spec.backend)
    backend.signal_node(spec, master, signal.SIGKILL)
    backend.start(spec, [master])  # an init system's auto-restart, well within down-after
    replicas = [n for n in spec.redis_nodes if n != master]

    def resynced() -> tuple[bool, object]:
        # Synced from the restarted master (its new replication id), not still on the old link.
        try:
            with client(master.host, master.port, spec.password) as conn:
                restarted_replid = conn.info("replication")["master_replid"]
            seen = []
            for node in replicas:
                with client(node.host, node.port, spec.password) as conn:
                    info = conn.info("replication")
                    seen.append((info.get("master_link_status"), info.get("master_replid"), conn.dbsize()))
        except (redis.RedisError, OSError) as exc:  # a container restarted under load may reset a first connection
            return False, str(exc)
        return all(link == "up" and replid == restarted_replid for link, replid, _ in seen), seen

    seen = wait_for(resynced, what="replicas to reconnect to the restarted master", timeout=20)
    assert isinstance(seen, list)
    return int(min(size for _, _, size in seen))


@pytest.mark.one_server
def test_restarted_master_without_persistence_wipes_its_replicas(lab_factory, profile_file) -> None:
    """The hazard: persistence off + auto-restart = an empty master, and replicas copy the emptiness."""
    profile = profile_file(redis={"appendonly": "no", "save": []}, sentinel=SLOW_SENTINEL)
    spec = lab_factory(profile, tag="nopersist")
    assert _fast_master_restart_keeps(spec) == 0


def test_lab_profile_persistence_guards_replicas_on_master_restart(lab_factory, profile_file) -> None:
    spec = lab_factory(profile_file(sentinel=SLOW_SENTINEL), tag="persist")
    kept = _fast_master_restart_keeps(spec)
    assert kept >= 500
