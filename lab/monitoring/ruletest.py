"""`promtool test rules` fixtures recorded from a real drill: the series the shipped rules read, as the lab's
Prometheus scraped them, resampled onto the evaluation grid, and the alerts that Prometheus raised from them
at chosen evaluations (firing ones, and the rules that stayed quiet). Replayed by promtool against the rules
as rendered today, a fixture fails when a rule change would have changed what that drill paged."""

from __future__ import annotations

import math
import re
from typing import Any

from lab.monitoring import api
from lab.monitoring.alerts import Transition
from lab.spec import LabSpec

#: Labels an exporter or Prometheus adds that no rule reads: left out of a fixture's series (keeping them
#: would tie a fixture to one run's process ids and versions).
NOISE = {"run_id", "process_id", "redis_build_id", "os", "redis_version", "tcp_port", "maxmemory_policy", "lab"}


def rule_metrics(rules_text: str) -> list[str]:
    """The metric names the rules read (the recording rules' own names excluded: promtool computes those)."""
    exprs = " ".join(re.findall(r"expr: (.*)", rules_text))
    records = set(re.findall(r"record: (\S+)", rules_text))
    return sorted(set(re.findall(r"\b(redis_[a-z0-9_:]+|up)\b", exprs)) - records)


def series_text(metric: dict[str, str]) -> str:
    name = metric.get("__name__", "")
    labels = ",".join(f'{k}="{v}"' for k, v in sorted(metric.items()) if k != "__name__" and k not in NOISE)
    return f"{name}{{{labels}}}"


def record(spec: LabSpec, metrics: list[str], start: float, end: float) -> dict[str, list[tuple[float, str]]]:
    """Every raw sample of ``metrics`` scraped between ``start`` and ``end`` (unix seconds), by series."""
    span = max(1, int(end - start + 1))
    query = '{__name__=~"' + "|".join(metrics) + '"}' + f"[{span}s]"
    found: dict[str, list[tuple[float, str]]] = {}
    for series in api.prometheus(spec, "/api/v1/query", query=query, time=end)["result"]:
        samples = [(float(t), v) for t, v in series["values"] if float(t) >= start]
        if samples:
            found.setdefault(series_text(series["metric"]), []).extend(samples)
    return found


def grid_values(samples: list[tuple[float, str]], start: float, step: float, points: int, scrape: float) -> str:
    """promtool's ``values`` for one series on the grid start + i*step: at each point the latest sample no older
    than a scrape interval (Prometheus's view right then), ``stale`` once the series stopped being scraped
    (Prometheus writes a staleness marker then), ``_`` before it began."""
    samples = sorted(samples)
    out: list[str] = []
    began = False
    for i in range(points):
        at = start + i * step
        recent = [v for t, v in samples if at - scrape * 1.5 < t <= at]
        if recent:
            value = float(recent[-1])
            out.append("stale" if math.isnan(value) else f"{value:g}")
            began = True
        elif began:
            out.append("stale")
        else:
            out.append("_")
    return " ".join(out)


def _spans(changes: list[Transition]) -> dict[tuple[str, tuple[tuple[str, str], ...]], tuple[float, float]]:
    """Each shipped alert instance's first firing span (from firing to resolved)."""
    began: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    spans: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[float, float]] = {}
    for change in changes:
        key = (change.name, tuple(sorted(change.labels.items())))
        if change.source != "redis-ha-lab" or key in spans:
            continue
        if change.state == "firing":
            began.setdefault(key, change.at)
        elif change.state == "resolved" and key in began:
            spans[key] = (began[key], change.at)
    return spans


def fixture(
    series: dict[str, list[tuple[float, str]]],
    changes: list[Transition],
    window: tuple[float, float],
    step: float,
    annotations: dict[str, dict[str, str]],
    quiet: list[str],
    rule_file: str,
) -> dict[str, Any]:
    """A promtool test document over ``window`` (unix seconds): the series on the evaluation grid; at the middle
    of each shipped alert's firing span, every instance of that alert Prometheus had firing then (a point where
    another instance is within two evaluations of an edge is left out: the grid's rounding could move it); and
    every two evaluations, none of ``quiet`` (the rules the scenario must never fire). ``annotations``: alert
    name -> its annotations as the rule file gives them (promtool compares them too)."""
    start, end = window
    points = int((end - start) / step) + 1
    inputs = [
        {"series": name, "values": grid_values(s, start, step, points, step)} for name, s in sorted(series.items())
    ]
    spans = _spans(changes)
    tests: list[dict[str, Any]] = []
    for (name, _), (first, last) in sorted(spans.items(), key=lambda kv: kv[1][0]):
        at = round(((first + last) / 2 - start) / step) * step
        when = start + at
        same = {k: s for k, s in spans.items() if k[0] == name}
        near_edge = any(abs(when - edge) < 2 * step for s in same.values() for edge in s)
        if near_edge or any(t["eval_time"] == f"{at:g}s" and t["alertname"] == name for t in tests):
            continue
        firing = [dict(k[1]) for k, s in same.items() if s[0] < when < s[1]]
        exp = [{"exp_labels": labels, "exp_annotations": annotations[name]} for labels in firing]
        tests.append({"eval_time": f"{at:g}s", "alertname": name, "exp_alerts": exp})
    fired = {k[0] for k in spans}
    for at in range(0, points, 2):
        tests += [{"eval_time": f"{at * step:g}s", "alertname": n, "exp_alerts": []} for n in quiet if n not in fired]
    return {
        "rule_files": [rule_file],
        "evaluation_interval": f"{step:g}s",
        "tests": [{"interval": f"{step:g}s", "input_series": inputs, "alert_rule_test": tests}],
    }


def metric_names(spec: LabSpec) -> list[str]:
    """Every metric name the lab's exporters gave Prometheus (``up`` included): what a dashboard may name."""
    names = api.prometheus(spec, "/api/v1/label/__name__/values")
    return [*sorted(n for n in names if n.startswith("redis_") and ":" not in n), "up"]
