"""The shipped alert rules against real failovers: a lab with `lab up --monitoring` (real redis_exporter,
Prometheus, Alertmanager), a drill per scenario, and what must fire and what must stay quiet
(lab.drill.alerting.EXPECTED) asserted on what the lab's own Prometheus raised."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lab import control
from lab.drill.alerting import EXPECTED, alert_rows, fired, unnoticed_pages, verdict
from lab.drill.result import DrillResult
from lab.pytest_plugin import lab_name, require_backend, require_fault, require_monitoring
from lab.spec import LabSpec

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.one_server]


@pytest.fixture(scope="module")
def monitored(lab_home: Path, lab_backend: str) -> Iterator[LabSpec]:
    """One lab with monitoring per backend and worker, shared by this module's drills (each heals its lab)."""
    require_backend(lab_backend)
    require_monitoring()
    spec = control.up(lab_name(f"mon-{lab_backend}"), "lab", lab_backend, lab_home, monitoring=True).spec
    yield spec
    control.down(spec.name, lab_home)


def explain(result: DrillResult) -> str:
    rows = alert_rows(result.recorder.history.records)
    return "; ".join(f"{r.alert}[{r.source}] pending {r.pending_ms} firing {r.firing_ms}" for r in rows)


def check_alerts(spec: LabSpec, drill: Callable[..., DrillResult], scenario: str) -> None:
    control.wait_healthy(spec, timeout=30)
    result = drill(spec, scenario, duration=8)
    records = result.recorder.history.records
    assert verdict(scenario, records) == {"missed": [], "false": []}, explain(result)
    # A page is what reached Alertmanager's "page" receiver: the same rules, notified.
    paged = {r["alert"] for r in records if r["type"] == "page" and r["receiver"] == "page" and r["status"] == "firing"}
    assert paged <= fired(records), (paged, explain(result))
    if scenario == "failover":
        assert not paged, f"a safe failover paged: {sorted(paged)}"
    # check-redis-health, scraped beside the exporters, saw every page's trouble too.
    assert any(r["type"] == "health" for r in records), "no check-redis-health verdict was recorded"
    assert unnoticed_pages(records) == [], explain(result)


# (the alerts do not depend on the backend: the compose backend drills kill-master, below)
@pytest.mark.one_backend
# (not failover-coordinated: it needs Valkey 9.0+ Sentinels, and expects what the safe failover does)
@pytest.mark.parametrize("scenario", sorted(set(EXPECTED) - {"failover-coordinated"}))
def test_shipped_rules_fire_and_stay_quiet_as_the_scenario_demands(
    monitored: LabSpec, drill: Callable[..., DrillResult], scenario: str
) -> None:
    if scenario == "isolate-master":
        require_fault(monitored, "isolate")
    check_alerts(monitored, drill, scenario)


def test_a_compose_lab_pages_a_dead_master(
    request: pytest.FixtureRequest, lab_home: Path, drill: Callable[..., DrillResult]
) -> None:
    """The same exporters, Prometheus and Alertmanager beside a compose lab (they reach its containers from the
    host, as its clients do)."""
    if request.config.getoption("--lab-backend") not in ("compose", "all"):
        pytest.skip("--lab-backend local: the compose backend is not asked for")
    require_backend("compose")
    require_monitoring()
    spec = control.up(lab_name("mon-compose"), "lab", "compose", lab_home, monitoring=True).spec
    try:
        check_alerts(spec, drill, "kill-master")
    finally:
        control.down(spec.name, lab_home)
