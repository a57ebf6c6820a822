"""A signal at any moment of a command's life, not only mid-fault: while Python loads the CLI, while it checks
its arguments, in the middle of the command, while it prints the result. Whatever the moment, the process says
one true line and exits 128 + the signal, or finishes and says nothing about a signal (hostile tour: a SIGTERM
while the CLI imported its modules printed "nothing was changed" and the command then isolated a node and
exited 0; other moments died silently by the signal)."""

from __future__ import annotations

import signal
import time

import pytest

from lab.backends import get_backend
from lab.pytest_plugin import require_fault
from lab.spec import LabSpec
from tests.helpers import run_lab, start_lab

# (when a signal lands in a command's life does not depend on the backend: one is enough for the suite's time)
pytestmark = [pytest.mark.integration, pytest.mark.one_server, pytest.mark.one_backend]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_a_signal_at_any_moment_is_one_true_line(lab: LabSpec, sig: signal.Signals) -> None:
    require_fault(lab, "isolate")
    home = lab.base_dir.parent
    backend = get_backend(lab.backend)
    slow_start = {"PYTHONDONTWRITEBYTECODE": "1"}  # a slower start: wider windows
    seen: dict[str, int] = {}
    for step in range(11):  # 0 to 0.9 s after the start: loading, the gate, the isolation, the result
        process = start_lab("isolate", "--name", lab.name, "redis-2", home=home, env=slow_start)
        time.sleep(step * 0.09)  # the moment of the signal is what varies here
        process.send_signal(sig)
        out, err = process.communicate(timeout=60)
        rules = backend.isolation_rules(lab)
        if process.returncode == -sig or "init_import_site" in err:
            # Before Python ran any of lab's code (its own start-up, the site module): nothing was done.
            assert out == "" and rules == [], (step, out, err, rules)
        elif process.returncode == 0:
            assert "interrupted" not in err and "isolate: redis-2" in out, (step, out, err)
            seen["finished"] = seen.get("finished", 0) + 1
        else:
            assert process.returncode == 128 + sig, (step, process.returncode, out, err)
            lines = err.strip().splitlines()
            assert lines and f"interrupted by {sig.name}" in lines[-1] and "Traceback" not in err, (step, err)
            if "nothing was changed" in err or "before it changed anything" in err:
                assert rules == [], (step, "said nothing was changed, but", rules)
            seen["interrupted"] = seen.get("interrupted", 0) + 1
        assert run_lab("heal", "--name", lab.name, home=home, timeout=120).returncode == 0
        assert backend.isolation_rules(lab) == []
    assert seen.get("interrupted"), seen  # the sweep did hit the command before it ended


def test_heal_lifts_a_write_pause_that_a_killed_failover_left(lab: LabSpec) -> None:
    """kill -9 of `lab failover` after its CLIENT PAUSE WRITE (hostile tour D1): no undo ran, nothing was
    recorded, and `lab heal` said healthy while the master blocked every write for up to 30 s. Heal lifts
    any write pause on every data node."""
    from lab.nodes import current_master
    from lab.topology import node_client

    master = current_master(lab)
    with node_client(lab, master) as conn:
        conn.execute_command("CLIENT", "PAUSE", "30000", "WRITE")  # what the killed failover left
    assert run_lab("heal", "--name", lab.name, home=lab.base_dir.parent).returncode == 0
    # The pause also holds the Sentinels' hello PUBLISH: under load they may fail the paused master over
    # before heal runs (CI, compose), so the old master is checked with a PUBLISH, which a write pause holds
    # on a master and a replica alike, and the write goes to whichever node is master now.
    with node_client(lab, master, timeout=5) as conn:  # still paused: this would time out (30 s pause)
        conn.publish("heal:after-pause", "1")
    with node_client(lab, current_master(lab), timeout=5) as conn:
        assert conn.set("heal:after-pause", "1")


def test_heal_points_a_replica_that_replicates_from_a_replica_at_the_master(lab: LabSpec) -> None:
    """A second failover while a drill was interrupted left redis-1 replicating from redis-2 (CI, compose, both
    cores saturated, Sentinels in TILT): `lab heal` timed out waiting for Sentinel to fix it. Heal points it at
    the master itself."""
    from lab.nodes import current_master
    from lab.topology import node_client

    master = current_master(lab)
    first, second = [n for n in lab.redis_nodes if n != master]
    from lab import faults

    with node_client(lab, second) as conn:
        conn.replicaof(first.host, first.port)  # a chain: master <- first <- second
    faults.heal(lab)  # heal's own work, without the CLI's wait for health (Sentinel fixes it after 5 s+)
    with node_client(lab, second) as conn:
        info = conn.info("replication")
    assert (info["master_host"], int(info["master_port"])) == (master.host, master.port)
    healed = run_lab("heal", "--name", lab.name, home=lab.base_dir.parent, timeout=120)
    assert healed.returncode == 0, healed.stderr
