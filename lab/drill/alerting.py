"""The monitoring side of a drill (a lab with ``lab up --monitoring``): the alerts Prometheus raised and the
notifications Alertmanager sent, put on the drill's clock as ``alert`` and ``page`` records; what each rule
did relative to the fault; and which rules each scenario must fire and must leave quiet."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from lab.drill.history import Record, Recorder
from lab.monitoring import alerts, api
from lab.spec import LabSpec

QUIET_BEFORE_S = 20.0  # at most this long for the alerts of an earlier drill to resolve before the fault
QUIET_AFTER_S = 30.0  # and for this drill's to resolve after the heal

#: The shipped rules (conf/monitoring/redis-ha.rules.yml.tpl) each scenario must fire, and must leave quiet,
#: with the lab profile's timers: what the monitoring tests assert against a real Prometheus.
PAGES = (
    "RedisDown", "RedisNoMaster", "RedisTooManyMasters", "RedisPersistenceFailing",
    "SentinelMasterDown", "SentinelsDisagree", "SentinelQuorumLost",
)  # fmt: skip
EXPECTED: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "kill-master": (
        frozenset({"RedisDown", "RedisFailover"}),
        frozenset({"RedisNoMaster", "RedisTooManyMasters", "SentinelMasterDown", "SentinelQuorumLost", "SentinelDown"}),
    ),
    "freeze-master": (
        frozenset({"RedisDown", "RedisFailover"}),
        frozenset({"RedisNoMaster", "SentinelQuorumLost", "SentinelDown", "SentinelTilt"}),
    ),
    "isolate-master": (
        frozenset({"RedisTooManyMasters", "RedisFailover"}),
        frozenset({"RedisNoMaster", "RedisDown", "SentinelQuorumLost", "SentinelDown"}),
    ),
    "failover": (frozenset({"RedisFailover"}), frozenset(PAGES)),
    "kill-sentinel": (
        frozenset({"SentinelDown", "SentinelPeerMissing"}),
        frozenset({"SentinelQuorumLost", "RedisDown", "RedisNoMaster", "RedisFailover", "SentinelMasterDown"}),
    ),
    "quorum-loss": (
        frozenset({"SentinelDown", "SentinelQuorumLost"}),
        frozenset({"RedisDown", "RedisNoMaster", "RedisFailover"}),
    ),
}


class AlertWatch:
    """Brackets a drill on a lab with monitoring: ``begin`` before the fault, ``finish`` after the heal."""

    def __init__(self, spec: LabSpec) -> None:
        self.spec = spec
        self.since = 0.0
        self.active_at_start: list[str] = []

    def begin(self) -> None:
        """Wait for the shipped rules' alerts of an earlier drill to resolve, RedisFailover's window included:
        an alert still firing would hide this drill's."""
        self.active_at_start = alerts.wait_quiet(self.spec, QUIET_BEFORE_S, ignore=())
        self.since = time.time()

    def finish(self, recorder: Recorder) -> None:
        """Wait for the alerts to resolve, then add what Prometheus and the webhook saw to the history."""
        alerts.wait_quiet(self.spec, QUIET_AFTER_S)
        history = recorder.history
        epoch = history.clock.epoch_ms / 1000

        def on_clock(unix: float) -> float:
            return round((unix - epoch) * 1000, 3)

        for change in alerts.transitions(self.spec, self.since, time.time()):
            history.add(
                "alert", t=on_clock(change.at), alert=change.name, state=change.state, instance=change.instance,
                severity=change.severity, source=change.source,
            )  # fmt: skip
        for note in api.notifications(self.spec, self.since):
            for alert in note["alerts"]:
                labels = alert["labels"]
                history.add(
                    "page", t=on_clock(note["received"]), receiver=note["receiver"], status=alert["status"],
                    alert=labels.get("alertname", ""), instance=labels.get("instance", ""),
                    source=labels.get("source", "redis-ha-lab"),
                )  # fmt: skip


@dataclass
class AlertRow:
    """One rule (name and source) over a drill: when it first went pending and firing and when it last
    resolved (ms on the drill's clock), on which instances, and when a notification first reached each
    receiver."""

    alert: str
    source: str
    severity: str
    pending_ms: float | None = None
    firing_ms: float | None = None
    resolved_ms: float | None = None
    instances: list[str] = field(default_factory=list)
    notified: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "alert": self.alert, "source": self.source, "severity": self.severity, "pending_ms": self.pending_ms,
            "firing_ms": self.firing_ms, "resolved_ms": self.resolved_ms, "instances": self.instances,
            "notified_ms": self.notified,
        }  # fmt: skip


def alert_rows(records: list[Record]) -> list[AlertRow]:
    """Every rule that went pending or firing in the drill, in the order it first did."""
    rows: dict[tuple[str, str], AlertRow] = {}
    for r in sorted((r for r in records if r["type"] == "alert"), key=lambda r: r["t"]):
        row = rows.setdefault((r["alert"], r["source"]), AlertRow(r["alert"], r["source"], r["severity"]))
        if r["state"] == "pending" and row.pending_ms is None:
            row.pending_ms = r["t"]
        elif r["state"] == "firing" and row.firing_ms is None:
            row.firing_ms = r["t"]
            row.pending_ms = r["t"] if row.pending_ms is None else row.pending_ms  # (for: 0s)
        elif r["state"] == "resolved":
            row.resolved_ms = r["t"]
        if r["instance"] and r["instance"] not in row.instances:
            row.instances.append(r["instance"])
    for r in (r for r in records if r["type"] == "page" and r["status"] == "firing"):
        paged = rows.get((r["alert"], r["source"]))
        if paged is not None and r["receiver"] not in paged.notified:
            paged.notified[r["receiver"]] = r["t"]
    return list(rows.values())


def fired(records: list[Record]) -> set[str]:
    """The shipped rules that began firing once the drill's first fault was injected (one still firing from
    an earlier drill, RedisFailover's window say, is not this drill's)."""
    fault = first_fault_ms(records)
    return {
        r["alert"]
        for r in records
        if r["type"] == "alert" and r["source"] == "redis-ha-lab" and r["state"] == "firing"
        and fault is not None and r["t"] >= fault
    }  # fmt: skip


def verdict(scenario: str, records: list[Record]) -> dict[str, list[str]]:
    """What the scenario's expectations (:data:`EXPECTED`) say of the shipped rules: ``missed`` (must fire,
    did not) and ``false`` (must stay quiet, fired). An unlisted scenario has none."""
    must, quiet = EXPECTED.get(scenario, (frozenset(), frozenset()))
    seen = fired(records)
    return {"missed": sorted(must - seen), "false": sorted(quiet & seen)}


def first_fault_ms(records: list[Record]) -> float | None:
    return next((r["t"] for r in records if r["type"] == "fault" and r["action"] == "inject"), None)
