"""What the lab's Prometheus and Alertmanager say, over their HTTP APIs (on 127.0.0.1, no proxy), and
what the webhook recorded."""

from __future__ import annotations

import datetime
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from lab.errors import LabError
from lab.monitoring import HEALTH_INSTANCE
from lab.spec import MONITORING_DIR, LabSpec, Monitoring

NOTIFICATIONS = "notifications.jsonl"
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(url: str, timeout: float = 2.0) -> bytes:
    """The body of a GET; raises OSError (urllib's errors are OSErrors) when it does not answer 2xx."""
    with _DIRECT.open(url, timeout=timeout) as response:
        return bytes(response.read())


def answers(url: str) -> bool:
    try:
        get(url, timeout=0.5)
    except (OSError, ValueError):
        return False
    return True


def unix(stamp: str) -> float:
    """Prometheus's RFC 3339 time ("2026-12-07T03:00:07.532085798Z") in unix seconds; 0 for none."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z", stamp)
    if match is None:
        return 0.0
    whole = datetime.datetime.fromisoformat(match[1]).replace(tzinfo=datetime.UTC).timestamp()
    return whole + float(match[2] or 0)


def monitoring_of(spec: LabSpec) -> Monitoring:
    if spec.monitoring is None:
        raise LabError(f"lab {spec.name} runs without monitoring: `lab up --name {spec.name} --monitoring` adds it")
    return spec.monitoring


def prometheus(spec: LabSpec, path: str, **params: Any) -> Any:
    """``data`` of a Prometheus API call (``/api/v1/...``); LabError naming the call when it fails."""
    url = f"{monitoring_of(spec).url('prometheus')}{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    try:
        body = json.loads(get(url, timeout=10))
    except (OSError, ValueError) as exc:
        raise LabError(f"lab {spec.name}'s Prometheus did not answer {path}: {exc}") from None
    if body.get("status") != "success":
        raise LabError(f"lab {spec.name}'s Prometheus refused {path}: {body.get('error', body)}")
    return body["data"]


def targets_down(spec: LabSpec) -> list[str]:
    """The targets (every node's exporter, and check-redis-health where the lab runs it) Prometheus has not
    scraped successfully (yet): "instance (why)". Right after Prometheus starts it has no targets at all for a
    few seconds (its discovery sends updates at most every 5 s): those count as not scraped. (Not ``up``: after
    a restart it still holds the samples from before.)"""
    targets = prometheus(spec, "/api/v1/targets", state="active")["activeTargets"]
    health = {t["labels"].get("instance"): (t["health"], t.get("lastError")) for t in targets}
    expected = [n.name for n in spec.nodes]
    if spec.monitoring is not None and "health" in spec.monitoring.ports:
        expected.append(HEALTH_INSTANCE)
    missing = [(name, health.get(name, ("not a target yet", ""))) for name in expected]
    return [f"{name} ({error or state})" for name, (state, error) in missing if state != "up"]


def query_range(spec: LabSpec, query: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
    """A range query's series (``metric``, ``values`` as [unix seconds, "value"])."""
    data = prometheus(spec, "/api/v1/query_range", query=query, start=start, end=end, step=step)
    return list(data["result"])


def notifications(spec: LabSpec, since: float = 0.0) -> list[dict[str, Any]]:
    """What the webhook recorded (lab.monitoring.webhook), received at or after ``since`` (unix seconds). Anyone
    on this host can post to it (as to Alertmanager): a line not of the webhook's own shape is skipped."""
    path = spec.base_dir / MONITORING_DIR / NOTIFICATIONS
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return []
    found = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line being written as this reads
        if well_formed(entry) and entry["received"] >= since:
            found.append(entry)
    return found


def well_formed(entry: Any) -> bool:
    """A notification as lab.monitoring.webhook records it: when, to whom, and its alerts' status and labels."""
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("received"), int | float)
        and isinstance(entry.get("receiver"), str)
        and isinstance(entry.get("alerts"), list)
        and all(
            isinstance(a, dict) and isinstance(a.get("status"), str) and isinstance(a.get("labels"), dict)
            and all(isinstance(v, str) for v in a["labels"].values())
            for a in entry["alerts"]
        )
    )  # fmt: skip


def notifications_path(directory: Path) -> Path:
    return directory / MONITORING_DIR / NOTIFICATIONS
