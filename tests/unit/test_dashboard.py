"""The shipped Grafana dashboard (conf/monitoring/grafana-dashboard.json) is what lab.monitoring.dashboard
generates, and names only metrics a lab's exporters gave Prometheus (recorded beside the rule fixtures), the
shipped recording rules, or ALERTS. That each query parses is promtool's to say: tests/integration."""

from __future__ import annotations

import json
import re
from pathlib import Path

from lab.monitoring import dashboard
from lab.profile import load_profile
from lab.render import render_rules

NAMES = Path(__file__).resolve().parent.parent / "data" / "promtool" / "metric-names.txt"
KEYWORDS = {"by", "on", "without", "and", "or", "unless", "ignoring", "group_left", "group_right"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (label matchers, grouping labels, ranges and functions out)."""
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]|\b(by|on|without)\s*\([^)]*\)", " ", expr)
    words = re.findall(r"(?<![\w:])([A-Za-z_:][\w:]*)(?![\w:]|\s*\()", bare)
    return {n for n in words if n not in KEYWORDS}


def test_the_committed_dashboard_is_the_generated_one() -> None:
    assert dashboard.main(["--check"]) == 0, "run `python -m lab.monitoring.dashboard`"


def test_every_query_names_a_metric_the_lab_has() -> None:
    recorded = set(re.findall(r"record: (\S+)", render_rules(load_profile("lab", env={}))))
    known = set(NAMES.read_text().split()) | recorded | {"ALERTS"}
    for expr in dashboard.exprs():
        assert metric_names(expr) and metric_names(expr) <= known, (expr, metric_names(expr) - known)


def test_the_panels_fit_the_grid_and_each_has_its_own_id() -> None:
    doc = json.loads(dashboard.PATH.read_text())
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    for panel in doc["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert [t["refId"] for t in panel["targets"]] == [chr(ord("A") + i) for i in range(len(panel["targets"]))]
