"""The alerts a lab's Prometheus raised over a span of time, read back from its ``ALERTS`` series (one point
per rule evaluation while an alert is pending or firing), and what Alertmanager sent on to the webhook."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from lab.monitoring import api
from lab.spec import LabSpec

#: Labels that say which alert it is, beyond its name (Prometheus adds alertstate to ALERTS).
_NOT_IDENTITY = {"__name__", "alertstate", "alertname", "lab"}


@dataclass(frozen=True)
class Transition:
    """An alert (``name`` and its ``labels``) entering ``state`` (pending, firing, resolved) at ``at``
    (unix seconds: the rule evaluation that saw it, or the first that no longer did)."""

    name: str
    labels: dict[str, str]
    state: str
    at: float

    @property
    def source(self) -> str:
        """Whose rule: "redis-ha-lab" (conf/monitoring/redis-ha.rules.yml.tpl) or a community set's name."""
        return self.labels.get("source", "redis-ha-lab")

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")

    @property
    def instance(self) -> str:
        return self.labels.get("instance", "")


def _key(metric: dict[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return metric.get("alertname", ""), tuple(sorted((k, v) for k, v in metric.items() if k not in _NOT_IDENTITY))


def transitions(spec: LabSpec, start: float, end: float) -> list[Transition]:
    """Every alert's transitions between ``start`` and ``end`` (unix seconds), in time order, at the rule
    evaluations that made them (the raw samples of ``ALERTS``, not a range query's steps). An alert already
    active at ``start`` shows its state at its first evaluation after ``start``."""
    step = api.monitoring_of(spec).evaluation_s
    span = max(1, int(end - start + 1))
    points: dict[tuple[str, tuple[tuple[str, str], ...]], dict[float, str]] = {}
    for series in api.prometheus(spec, "/api/v1/query", query=f"ALERTS[{span}s]", time=end)["result"]:
        seen = points.setdefault(_key(series["metric"]), {})
        for at, _ in series["values"]:
            at = float(at)
            # firing wins when one evaluation holds both (the one that turned it)
            if at >= start and seen.get(at) != "firing":
                seen[at] = series["metric"].get("alertstate", "firing")
    found: list[Transition] = []
    for (name, labels), seen in points.items():
        state, last = "inactive", None
        for at in sorted(seen):
            if last is not None and at - last > step * 1.5:  # an evaluation without it: resolved, then back
                found.append(Transition(name, dict(labels), "resolved", last + step))
                state = "inactive"
            if seen[at] != state:
                found.append(Transition(name, dict(labels), seen[at], at))
                state = seen[at]
            last = at
        if last is not None and last + step * 1.5 < end:
            found.append(Transition(name, dict(labels), "resolved", last + step))
    return sorted(found, key=lambda t: (t.at, t.name))


def health(spec: LabSpec, start: float, end: float) -> list[tuple[float, int]]:
    """check-redis-health's overall state (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN) at each scrape between
    ``start`` and ``end``, and 3 where its scrape failed (a check slower than the scrape interval)."""
    if "health" not in api.monitoring_of(spec).ports:
        return []
    span = max(1, int(end - start + 1))

    def samples(query: str) -> list[tuple[float, float]]:
        result = api.prometheus(spec, "/api/v1/query", query=f"{query}[{span}s]", time=end)["result"]
        return [(float(t), float(v)) for series in result for t, v in series["values"] if float(t) >= start]

    found = {at: int(value) for at, value in samples("redis_health_status")}
    found |= {at: 3 for at, up in samples('up{job="health"}') if up == 0}
    return sorted(found.items())


def active(spec: LabSpec) -> list[dict[str, Any]]:
    """The alerts pending or firing now (Prometheus's ``/api/v1/alerts``)."""
    return list(api.prometheus(spec, "/api/v1/alerts")["alerts"])


def wait_quiet(spec: LabSpec, timeout: float, *, ignore: tuple[str, ...] = ("info",)) -> list[str]:
    """Wait (at most ``timeout`` s) until none of the shipped rules' alerts but those of severity ``ignore`` is
    pending or firing (the community's are measured, not waited for: some stay up for minutes); returns what
    is still active then ("name@instance state")."""
    deadline = time.monotonic() + timeout
    while True:
        left = [
            f"{a['labels'].get('alertname')}@{a['labels'].get('instance', '')} {a['state']}"
            for a in active(spec)
            if a["labels"].get("severity") not in ignore and "source" not in a["labels"]
        ]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.25)
