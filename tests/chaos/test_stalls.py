"""The servers' own stalls in a drill's report: a fork for an AOF rewrite or an RDB save while the
workload runs is named, so a user can tell the fault's unavailability from the background's."""

from __future__ import annotations

import threading

from lab import nodes
from lab.drill.story import summary_rows
from lab.spec import LabSpec
from lab.topology import node_client


def test_a_rewrite_and_a_save_during_a_drill_are_in_its_report(healthy_lab: LabSpec, drill) -> None:
    spec = healthy_lab
    master = nodes.current_master(spec)

    def background() -> None:  # what the lab profile's auto-aof-rewrite and save rules do on their own
        threading.Event().wait(1.5)
        with node_client(spec, master) as conn:
            conn.bgrewriteaof()
        threading.Event().wait(1.5)
        with node_client(spec, master) as conn:
            conn.bgsave()

    thread = threading.Thread(target=background)
    thread.start()
    try:
        result = drill(spec, "kill-sentinel", duration=6)
    finally:
        thread.join()
    stalls = result.findings.stalls
    print(f"\nstalls: {stalls}")
    # (at least: the lab profile's own `save` rule can fork another save in the drill, seen on a saturated
    # machine; that a running rewrite is counted once is tests/unit/test_checker.py's)
    assert {(s["node"], s["what"]) for s in stalls} >= {(master.name, "AOF rewrite"), (master.name, "RDB save")}
    assert all(s["fork_ms"] >= 0 for s in stalls)
    rows = dict(summary_rows(result.findings.as_dict()))
    assert rows["server forks while the workload ran"].startswith(f"{len(stalls)} (")
