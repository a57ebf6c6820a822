"""Valkey 9's coordinated failover (SENTINEL FAILOVER <master> COORDINATED, valkey-io/valkey#1292) as `lab failover
--coordinated` and the failover-coordinated drill, on the production profile's least-privilege users; a lab
that cannot do it is refused before anything moves."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab import nodes
from lab.pytest_plugin import require_server
from lab.render import SENTINEL_AUTH_USER as SENTINEL_USER
from lab.topology import node_client
from tests.helpers import run_lab

# (the Sentinels' behaviour, not the backend's: the local backend runs it)
pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.one_server, pytest.mark.one_backend]


def test_a_coordinated_failover_on_valkey_9_loses_no_acknowledged_write(lab_factory, drill, lab_home: Path) -> None:
    require_server("valkey-9.1")
    spec = lab_factory("production", server=["valkey-9.1"], tag="coord")
    result = drill(spec, "failover-coordinated", duration=6)
    summary = result.findings.summary()
    assert summary["failovers"] == 1 and summary["lost"] == 0 and summary["ok"] > 0, summary
    # The Sentinels coordinated it: the lab paused nothing (a safe failover stamps its write pause in the history),
    # and the old master handed over by FAILOVER (its log says so).
    history = (result.report_dir / "history.jsonl").read_text()
    assert '"type": "pause"' not in history and '"type":"pause"' not in history
    old = spec.files(spec.node("redis-1")).logfile.read_text()
    assert "FAILOVER requested to" in old, old[-2000:]
    before = nodes.current_master(spec)
    moved = run_lab("failover", "--name", spec.name, "--coordinated", home=lab_home, timeout=120)
    said = moved.stdout + moved.stderr
    assert moved.returncode == 0 and moved.stdout.startswith(f"failover: {before.name} -> "), said
    assert nodes.current_master(spec) != before

    # Without FAILOVER and CLIENT PAUSE, Sentinel's user would leave the failover stuck at wait-promotion until
    # failover-timeout (seen on 9.1.2, NOPERM in the ACL LOG): refused, one line, nothing moves.
    for node in spec.redis_nodes:
        with node_client(spec, node, timeout=2) as conn:
            conn.execute_command("ACL", "SETUSER", SENTINEL_USER, "-failover")
    master = nodes.current_master(spec)
    refused = run_lab("failover", "--name", spec.name, "--coordinated", home=lab_home, timeout=60)
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(lines) == 1, refused.stderr
    assert f"Sentinel's user {SENTINEL_USER} on redis-1 may not run FAILOVER" in lines[0], lines
    assert nodes.current_master(spec) == master
    for node in spec.redis_nodes:
        with node_client(spec, node, timeout=2) as conn:
            conn.execute_command("ACL", "SETUSER", SENTINEL_USER, "+failover")


def test_a_lab_whose_sentinels_cannot_coordinate_is_refused_before_anything_moves(lab_factory, lab_home: Path) -> None:
    require_server("redis-8.2")
    spec = lab_factory(server=["redis-8.2"], tag="nocoord")
    refused = run_lab("failover", "--name", spec.name, "--coordinated", home=lab_home, timeout=60)
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 2 and len(lines) == 1, refused.stderr
    assert "sentinel-1 runs Redis 8.2.3; SENTINEL FAILOVER ... COORDINATED is Valkey 9.0+'s" in lines[0], lines
    drilled = run_lab("drill", "failover-coordinated", "--name", spec.name, home=lab_home, timeout=60)
    assert drilled.returncode != 0 and "not applicable to lab" in drilled.stderr, drilled.stderr
    assert nodes.current_master(spec).name == "redis-1"
