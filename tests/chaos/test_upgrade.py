"""The rolling-upgrade drill: Redis 6.2 -> Redis 7.0 -> Valkey 8.1 in one run, and to today's builds
(Redis 7.0 -> 8.2, Valkey 8.1 -> 9.1), with writes throughout."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.drill.steps import wait_converged
from lab.pytest_plugin import require_server
from lab.servers import resolve
from lab.topology import client
from tests.helpers import run_lab

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.one_server]


def test_rolling_upgrade_from_62_through_70_to_valkey_loses_no_acknowledged_write(lab_factory, drill) -> None:
    for name in ("redis-6.2", "redis-7.0", "valkey-8.1"):
        require_server(name)
    spec = lab_factory(server=["redis-6.2"], tag="roll")
    targets = [resolve("redis-7.0"), resolve("valkey-8.1")]
    result = drill(spec, "rolling-upgrade", clients=2, upgrade_to=targets)
    findings = result.findings
    # Per target: both replicas, a safe failover, the old master, three Sentinels.
    assert [s["step"].split(" to ")[-1] for s in findings.steps if " to " in s["step"]] == (
        ["redis-7.0"] * 6 + ["valkey-8.1"] * 6
    )
    assert sum(s["step"].startswith("failover away") for s in findings.steps) == 2
    assert findings.lost == 0, findings.lost_examples
    assert all(s["lost"] == 0 for s in findings.steps), findings.steps
    assert findings.summary()["ok"] > 0 and len(findings.failovers) >= 2
    master = wait_converged(spec)
    for node in spec.nodes:
        password = spec.password if node.kind == "redis" else spec.sentinel_password
        with client(node.host, node.port, password) as conn:
            assert conn.info("server").get("valkey_version") == "8.1.8", node.name
    assert master.kind == "redis"


@pytest.mark.one_backend  # (how compose moves a node to a new image: the 6.2 -> 7.0 -> Valkey test above)
@pytest.mark.parametrize(
    ("start", "to", "said"), [("redis-7.0", "redis-8.2", "8.2.3"), ("valkey-8.1", "valkey-9.1", "9.1.2")]
)
def test_a_rolling_upgrade_to_todays_builds_loses_no_acknowledged_write(lab_factory, drill, start, to, said) -> None:
    """Replicas first (a mixed lab: the old master feeds new replicas), a safe failover, then the old master,
    which a full sync from the new one would fail (RDB format 12 or Valkey's 80, which the old build cannot
    read), and the Sentinels."""
    for name in (start, to):
        require_server(name)
    spec = lab_factory(server=[start], tag="today")
    result = drill(spec, "rolling-upgrade", clients=2, upgrade_to=[resolve(to)])
    findings = result.findings
    assert [s["step"].split(" to ")[-1] for s in findings.steps if " to " in s["step"]] == [to] * 6
    assert sum(s["step"].startswith("failover away") for s in findings.steps) == 1
    assert findings.lost == 0, findings.lost_examples
    assert findings.summary()["ok"] > 0 and len(findings.failovers) >= 1
    wait_converged(spec)
    key = "valkey_version" if to.startswith("valkey") else "redis_version"
    for node in spec.nodes:
        password = spec.password if node.kind == "redis" else spec.sentinel_password
        with client(node.host, node.port, password) as conn:
            assert conn.info("server").get(key) == said, node.name


@pytest.mark.parametrize(
    ("start", "to", "refused"),
    [
        ("valkey-8.1", "redis-6.2", "redis-6.2 after valkey-8.1"),
        ("redis-6.2", "valkey-8.1,redis-7.0", "redis-7.0 after valkey-8.1"),
        ("valkey-9.1", "valkey-8.1", "valkey-8.1 after valkey-9.1"),
        ("redis-8.2", "valkey-9.1", "valkey-9.1 after redis-8.2"),
    ],
)
def test_a_downgrade_the_data_forbids_is_refused_before_a_lab_starts(
    tmp_path: Path, start: str, to: str, refused: str
) -> None:
    """The builds are known before anything starts: no lab is started only to refuse the move halfway (the rule
    is lab.upgrade's: a multi-part AOF or a newer RDB format than the target reads)."""
    for name in {start, *to.split(",")}:
        require_server(name)
    result = run_lab("drill", "rolling-upgrade", "--name", "h7d9", "--from", start, "--to", to, home=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stdout + result.stderr
    assert f"--to {refused} is a downgrade the data cannot take" in lines[0], lines[0]
    assert not (tmp_path / "h7d9").exists(), "no lab was started"
