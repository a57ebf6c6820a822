"""Degraded, one-way and flapping links on a real lab: what each does to the nodes' traffic, what `lab status`
shows, and that `lab heal`, `lab down` and a kill -9 of the command that applied one leave no rule and no
delayer behind."""

from __future__ import annotations

import json
import signal
import time

import pytest
import redis

from lab import delayers
from lab.backends import get_backend
from lab.nodes import current_master, wait_caught_up
from lab.pytest_plugin import require_fault
from lab.spec import LabSpec
from lab.topology import node_client
from lab.waits import wait_for
from tests.helpers import run_lab, start_lab

pytestmark = [pytest.mark.integration, pytest.mark.one_server]


def lab_cli(lab: LabSpec, *args: str) -> str:
    result = run_lab(*args, "--name", lab.name, home=lab.base_dir.parent, timeout=120)
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result.stdout


def nothing_left(lab: LabSpec) -> None:
    assert get_backend(lab.backend).isolation_rules(lab) == []
    assert delayers.running(lab) == []


def ping_ms(conn: redis.Redis, count: int = 40) -> list[float]:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        conn.ping()
        times.append((time.perf_counter() - start) * 1000)
    return sorted(times)


def test_a_delay_on_the_masters_client_links_holds_every_reply(lab: LabSpec) -> None:
    require_fault(lab, "degrade")
    master = current_master(lab)
    said = lab_cli(lab, "degrade", master.name, "--links", "clients", "--delay", "40")
    assert f"degrade: {master.name}'s links to clients: delay 40ms, what it sends" in said
    faults = json.loads(run_lab("status", "--name", lab.name, "--json", home=lab.base_dir.parent).stdout)["faults"]
    assert [(f["kind"], f["node"], f["peers"], f["delayer"]["running"]) for f in faults] == [
        ("degrade", master.name, ["clients"], True)
    ]
    with node_client(lab, master, timeout=5) as conn:
        assert ping_ms(conn)[0] >= 39.5  # every reply held (this client is outside the lab: a "clients" link)
    assert "undone: degrade" in lab_cli(lab, "heal")
    nothing_left(lab)


def test_a_narrow_replication_link_slows_the_stream_and_a_lossy_one_cuts_a_client(lab: LabSpec) -> None:
    require_fault(lab, "degrade")
    master = current_master(lab)
    replica = next(n for n in lab.redis_nodes if n != master)
    lab_cli(lab, "degrade", "--link", f"{master.name}:{replica.name}", "--bandwidth", "2mbit")
    with node_client(lab, master, timeout=10) as primary, node_client(lab, replica, timeout=5) as copy:
        start = time.perf_counter()
        primary.set("link-fault:big", b"x" * 400_000)
        wait_caught_up(primary, copy, timeout=30)
        elapsed = time.perf_counter() - start
        primary.delete("link-fault:big")
    assert elapsed >= 400_000 * 8 / 2e6 * 0.9, elapsed  # 1.6 s at 2 Mbit/s; on loopback it takes milliseconds
    lab_cli(lab, "heal")
    lab_cli(lab, "degrade", master.name, "--links", "clients", "--loss", "100")
    with node_client(lab, master, timeout=0.5) as conn, pytest.raises(redis.TimeoutError):
        conn.ping()
    lab_cli(lab, "heal")
    nothing_left(lab)
    with node_client(lab, master, timeout=5) as conn:
        assert conn.ping()


def test_a_sentinel_whose_packets_are_lost_one_way_sees_the_master_down_alone(lab: LabSpec) -> None:
    require_fault(lab, "isolate")
    sentinel = lab.sentinels[0]
    said = lab_cli(lab, "isolate", sentinel.name, "--one-way", "out")
    assert "only what it sends" in said
    rules = get_backend(lab.backend).isolation_rules(lab)
    # Only what it sends: by its source address on loopback, in its own namespace's OUTPUT with compose.
    sent = f"-s {sentinel.host}/32" if lab.backend == "local" else f"{sentinel.name}: -A OUTPUT"
    assert len(rules) == 5 and all(sent in rule for rule in rules), rules

    def flags(node_index: int) -> str:
        with node_client(lab, lab.sentinels[node_index], timeout=2) as conn:
            return str(conn.execute_command("SENTINEL", "MASTER", lab.master_name)).lower()

    wait_for(lambda: ("s_down" in flags(0), flags(0)), what="sentinel-1 to see the master down", timeout=15)
    assert "s_down" not in flags(1) and "s_down" not in flags(2)  # they still hear it: no failover
    lab_cli(lab, "heal")
    nothing_left(lab)


@pytest.mark.one_backend  # (what a killed command leaves is the same on both)
def test_a_kill_9_of_lab_degrade_at_any_moment_leaves_nothing_that_heal_does_not_remove(lab: LabSpec) -> None:
    require_fault(lab, "flap")
    home = lab.base_dir.parent
    replica = next(n for n in lab.redis_nodes if n != current_master(lab))
    lab_cli(lab, "flap", replica.name, "--from", lab.sentinels[2].name, "--period", "1")
    for step in range(5):  # 0.1 to 0.9 s: loading, the delayer's start, the record, the rules
        process = start_lab(
            "degrade", "--name", lab.name, replica.name, "--links", "clients", "--delay", "20", "--loss", "5", home=home
        )
        time.sleep(0.1 + step * 0.2)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
    status = run_lab("status", "--name", lab.name, home=home)
    assert "Traceback" not in status.stderr and "fault: flap" in status.stdout, status  # it reads what was left
    assert "undone: flap" in lab_cli(lab, "heal")
    nothing_left(lab)
