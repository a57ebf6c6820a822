"""What ACL009 flags really breaks replication: a production-profile lab (default user off) where one
node's masteruser/masterauth is a user only its own file defines. Every node accepts its own login,
so ACL005 is quiet and the lab looks healthy while that node is the master; once a failover makes it
a replica, the new master refuses its login (ACL LOG: replica2, auth) and it never syncs. Put back
as lint asks, the same restart syncs at once."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from lab import nodes
from lab.lint import lint_paths
from lab.spec import LabSpec, Node
from lab.topology import node_client
from lab.waits import wait_for
from tests.helpers import run_lab
from tests.unit.test_lint import own_replication_user

pytestmark = [pytest.mark.integration, pytest.mark.one_server]

#: The production profile with the lab's fast timers (what is tested is who logs in where).
FAST = {
    "sentinel": {"down_after_milliseconds": 1000, "failover_timeout": 5000},
    "redis": {"repl_diskless_sync_delay": 0},
    "topology": {"seed_sentinel_discovery": True},
}


def errors(spec: LabSpec) -> set[tuple[str, str]]:
    findings = lint_paths(sorted(spec.base_dir.glob("*/*.conf")), lab=True)
    return {(f.rule, Path(f.file).parent.name) for f in findings if f.severity == "error"}


def link(spec: LabSpec, node: Node) -> str:
    with node_client(spec, node) as conn:
        return str(conn.info("replication").get("master_link_status", "-"))


def refused_logins(spec: LabSpec, master: Node) -> list[str]:
    with node_client(spec, master) as conn:
        return [f"{e['username']} {e['reason']}" for e in conn.acl_log() if e["username"] == "replica2"]


def restart(spec: LabSpec, node: Node) -> None:
    result = run_lab("restart", "--name", spec.name, node.name, home=spec.base_dir.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_login_only_its_own_node_accepts_fails_after_a_failover(lab_factory, profile_file) -> None:
    spec: LabSpec = lab_factory(profile_file(base="production", **FAST), tag="lintacl")
    assert spec.acl and errors(spec) == set()
    old_master = nodes.current_master(spec, timeout=10)
    conf = spec.files(old_master).conf

    # The failover makes the old master a replica; its file now says masteruser replica2.
    result = run_lab("failover", "--name", spec.name, home=spec.base_dir.parent, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    master = nodes.current_master(spec, timeout=10)
    assert master != old_master
    # Sentinel's CONFIG REWRITE of the old master (replicaof the new one) comes first, or it would undo the edit.
    following = f"replicaof {master.host} {master.port}"
    wait_for(lambda: (following in conf.read_text(), None), what="the rewrite of the old master", timeout=15)
    original = conf.read_text()
    own_replication_user(spec.base_dir, old_master.name, "replica2")  # what test_lint's ACL009 case does
    assert errors(spec) == {("ACL009", old_master.name)}, "flagged, and nothing else is"

    # Restarted from that file it is pointed at the new master, which refuses replica2: no sync.
    restart(spec, old_master)
    logged = wait_for(
        lambda: (bool(found := refused_logins(spec, master)), found),
        what=f"{master.name} to refuse {old_master.name}'s login",
        timeout=15,
        interval=0.2,
    )
    assert logged[0] == "replica2 auth", logged
    assert link(spec, old_master) == "down"
    with node_client(spec, master) as conn:
        assert int(conn.info("replication")["connected_slaves"]) == 1, "only the other replica"
    with pytest.raises(redis.ReadOnlyError), node_client(spec, old_master) as conn:
        conn.set("lint:acl", "x")  # a replica still, never a second master: just an empty one

    # As lint asks (one replication user, alike on every node): the same restart syncs.
    conf.write_text(original)
    assert errors(spec) == set()
    restart(spec, old_master)
    wait_for(
        lambda: (link(spec, old_master) == "up", None), what=f"{old_master.name} to sync", timeout=20, interval=0.2
    )
