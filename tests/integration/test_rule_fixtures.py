"""The shipped rules against series recorded from real drills, without a lab: each tests/data/promtool fixture
(`make alert-findings`-style runs, `--fixtures`) is replayed by `promtool test rules` with the rules as the lab
profile renders them today. A rule change that would have changed what one of those drills paged fails here."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from lab.profile import load_profile
from lab.pytest_plugin import require_monitoring
from lab.render import render_rules

FIXTURES = sorted((Path(__file__).resolve().parent.parent / "data" / "promtool").glob("*.test.yml"))
pytestmark = pytest.mark.integration


def test_every_recorded_scenario_has_a_fixture() -> None:
    assert {f.name.removesuffix(".test.yml") for f in FIXTURES} >= {
        "kill-master", "freeze-master", "isolate-master", "failover", "kill-sentinel", "quorum-loss",
    }  # fmt: skip


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.name.removesuffix(".test.yml") for f in FIXTURES])
def test_the_rules_raise_what_the_drill_raised(fixture: Path, tmp_path: Path) -> None:
    require_monitoring()
    shutil.copyfile(fixture, tmp_path / fixture.name)
    (tmp_path / "redis-ha.rules.yml").write_text(render_rules(load_profile("lab", env={})))
    result = subprocess.run(
        ["promtool", "test", "rules", fixture.name], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "SUCCESS" in result.stdout


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    """promtool checks each panel's query as the expression of a recording rule (Grafana is not installable)."""
    import yaml

    from lab.monitoring import dashboard

    require_monitoring()
    rules = [{"record": f"dashboard:query_{i}", "expr": expr} for i, expr in enumerate(dashboard.exprs())]
    (tmp_path / "dashboard.rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        ["promtool", "check", "rules", "dashboard.rules.yml"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
