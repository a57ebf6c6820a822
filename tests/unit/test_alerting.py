"""The pure parts of monitoring: rule timers rendered from a profile, an alert's rows and verdict over a drill's
history, and the promtool fixture built from recorded series (lab.monitoring.ruletest)."""

from __future__ import annotations

from typing import Any

import yaml

from lab.drill.alerting import alert_rows, fired, verdict
from lab.monitoring.alerts import Transition
from lab.monitoring.ruletest import fixture, grid_values, rule_metrics, series_text
from lab.profile import load_profile
from lab.render import render_rules


def test_the_rules_take_each_profiles_timers() -> None:
    lab = yaml.safe_load(render_rules(load_profile("lab", env={})))
    prod = yaml.safe_load(render_rules(load_profile("production", env={})))
    timer = {r["alert"]: r.get("for") for g in lab["groups"] for r in g["rules"] if "alert" in r}
    assert timer["RedisDown"] == "2s" and timer["RedisTooManyMasters"] == "5s"
    assert {r["alert"]: r.get("for") for g in prod["groups"] for r in g["rules"] if "alert" in r}["RedisDown"] == "1m"
    # Every alert has a severity and a runbook anchor on docs/monitoring.md.
    for rule in (r for g in lab["groups"] for r in g["rules"] if "alert" in r):
        assert rule["labels"]["severity"] in ("page", "ticket", "info")
        assert rule["annotations"]["runbook"] == f"docs/monitoring.md#{rule['alert'].lower()}"


def records(*rows: tuple[float, str, str, str]) -> list[dict[str, Any]]:
    """(t ms, alert, state, source) alert records after a fault injected at 1000 ms."""
    history: list[dict[str, Any]] = [
        {"t": 1000.0, "type": "fault", "action": "inject", "fault": "kill", "node": "redis-1"}
    ]
    for t, alert, state, source in rows:
        history.append(
            {"t": t, "type": "alert", "alert": alert, "state": state, "instance": "redis-1", "severity": "page",
             "source": source}
        )  # fmt: skip
    return history


def test_an_alert_still_firing_from_an_earlier_drill_is_not_this_drills() -> None:
    history = records(
        (50.0, "RedisFailover", "firing", "redis-ha-lab"),  # from the drill before: firing before the fault
        (2000.0, "RedisDown", "pending", "redis-ha-lab"),
        (4000.0, "RedisDown", "firing", "redis-ha-lab"),
        (9000.0, "RedisDown", "resolved", "redis-ha-lab"),
        (2500.0, "RedisMissingMaster", "firing", "awesome-prometheus-alerts"),
    )
    assert fired(history) == {"RedisDown"}
    assert verdict("kill-master", history) == {"missed": ["RedisFailover"], "false": []}
    down = next(r for r in alert_rows(history) if r.alert == "RedisDown")
    assert (down.pending_ms, down.firing_ms, down.resolved_ms) == (2000.0, 4000.0, 9000.0)


def test_a_rule_that_must_stay_quiet_and_fired_is_a_false_alert() -> None:
    history = records((3000.0, "RedisNoMaster", "firing", "redis-ha-lab"))
    assert verdict("failover", history) == {"missed": ["RedisFailover"], "false": ["RedisNoMaster"]}


def test_rule_metrics_are_what_the_expressions_read() -> None:
    text = '- record: redis_ha:x\n  expr: count(redis_up)\n- alert: A\n  expr: redis_ha:x > 1 or up{job="redis"} == 0\n'
    assert rule_metrics(text) == ["redis_up", "up"]


def test_series_are_resampled_onto_the_evaluation_grid_and_go_stale_when_they_stop() -> None:
    samples = [(100.3, "1"), (101.3, "1"), (102.3, "0")]
    assert grid_values(samples, 100.0, 1.0, 6, 1.0) == "_ 1 1 0 stale stale"
    # labels no rule reads (a run's process id, the version) are left out of the series
    assert (
        series_text({"__name__": "redis_up", "instance": "redis-1", "process_id": "7"})
        == 'redis_up{instance="redis-1"}'
    )


def test_a_fixture_expects_what_fired_mid_span_and_nothing_of_the_quiet_rules() -> None:
    labels = {"instance": "redis-1", "job": "redis", "severity": "page"}
    changes = [
        Transition("RedisDown", labels, "pending", 102.0),
        Transition("RedisDown", labels, "firing", 104.0),
        Transition("RedisDown", labels, "resolved", 112.0),
    ]
    down = [(100.0 + i, "0" if 102 <= 100 + i < 111 else "1") for i in range(20)]
    doc = fixture(
        {'redis_up{instance="redis-1",job="redis"}': down},
        changes, (100.0, 119.0), 1.0, {"RedisDown": {"summary": "s"}}, ["RedisNoMaster"], "redis-ha.rules.yml",
    )  # fmt: skip
    tests = doc["tests"][0]["alert_rule_test"]
    assert tests[0] == {
        "eval_time": "8s", "alertname": "RedisDown",
        "exp_alerts": [{"exp_labels": labels, "exp_annotations": {"summary": "s"}}],
    }  # fmt: skip
    quiet = [t for t in tests if t["alertname"] == "RedisNoMaster"]
    assert len(quiet) == 10 and all(t["exp_alerts"] == [] for t in quiet)
    assert doc["rule_files"] == ["redis-ha.rules.yml"] and doc["evaluation_interval"] == "1s"


def roles(two_masters_ms: float) -> list[dict[str, Any]]:
    """Role samples every 100 ms: redis-2 promoted at 2 s; redis-1 still says master until 2 s + ``two_masters_ms``."""
    out: list[dict[str, Any]] = []
    for t in range(0, 15000, 100):
        old = "master" if t < 2000 + two_masters_ms else "replica"
        out.append({"t": float(t), "type": "role", "node": "redis-1", "role": old})
        out.append({"t": float(t), "type": "role", "node": "redis-2", "role": "master" if t >= 2000 else "replica"})
    setup = {
        "t": 0.0,
        "type": "monitoring",
        "scrape_s": 1.0,
        "evaluation_s": 1.0,
        "rules_for": {"RedisTooManyMasters": 5.0},
    }
    return [*out, setup]


def test_two_masters_are_judged_by_what_the_drill_saw() -> None:
    """A kill that turned into a second failover: two masters for 9 s must page (5 s `for`, a scrape, an
    evaluation, a second to spare); for 1 s the rule may go either way; for none it must stay quiet."""
    paged = records(
        (9000.0, "RedisTooManyMasters", "firing", "redis-ha-lab"), (4000.0, "RedisDown", "firing", "redis-ha-lab")
    )
    quiet = records((4000.0, "RedisDown", "firing", "redis-ha-lab"))
    assert verdict("kill-master", [*paged, *roles(9000)])["false"] == []
    assert "RedisTooManyMasters" in verdict("kill-master", [*quiet, *roles(9000)])["missed"]
    assert verdict("kill-master", [*paged, *roles(1000)])["false"] == []
    assert verdict("kill-master", [*quiet, *roles(1000)])["missed"] == ["RedisFailover"]
    assert verdict("kill-master", paged)["false"] == ["RedisTooManyMasters"]


def test_a_page_the_health_checker_never_saw_is_named() -> None:
    from lab.drill.alerting import unnoticed_pages

    page = records((2000.0, "RedisDown", "pending", "redis-ha-lab"), (4000.0, "RedisDown", "firing", "redis-ha-lab"))
    page.append({"t": 9000.0, "type": "alert", "alert": "RedisDown", "state": "resolved", "instance": "redis-1",
                 "severity": "page", "source": "redis-ha-lab"})  # fmt: skip
    ok = [{"t": 0.0, "type": "health", "status": 0}]
    assert unnoticed_pages([*page, *ok]) == ["RedisDown"]
    assert unnoticed_pages([*page, *ok, {"t": 1500.0, "type": "health", "status": 2}]) == []
    assert unnoticed_pages(page) == [], "no health verdicts recorded: nothing to compare"


def test_monitoring_timers_out_of_range_are_refused_in_one_line(tmp_path: Any) -> None:
    import pytest

    from lab.errors import UsageError

    for section, value in (("scrape_interval", "0s"), ("evaluation_interval", "1h"), ("scrape_interval", "-1s")):
        path = tmp_path / f"{section}.yaml"
        path.write_text(f"extends: lab\nmonitoring:\n  {section}: {value}\n")
        with pytest.raises(UsageError, match=f"monitoring.{section}"):
            load_profile(str(path), env={})


def test_render_refuses_to_write_rules_through_a_symbolic_link(tmp_path: Any) -> None:
    import pytest

    from lab.errors import UsageError
    from lab.render import render_profile

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "out" / "monitoring").mkdir(parents=True)
    (tmp_path / "out" / "monitoring" / "rules").symlink_to(elsewhere)
    with pytest.raises(UsageError, match="is a symbolic link"):
        render_profile(load_profile("production", env={}), tmp_path / "out")
    assert list(elsewhere.iterdir()) == []
