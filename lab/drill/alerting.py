"""The monitoring side of a drill (a lab with ``lab up --monitoring``): the alerts Prometheus raised and the
notifications Alertmanager sent, put on the drill's clock as ``alert`` and ``page`` records; what each rule
did relative to the fault; and which rules each scenario must fire and must leave quiet."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.drill.checker import masters_at_once
from lab.drill.history import Record, Recorder
from lab.monitoring import alerts, api, ruletest
from lab.render import RULES_FILE
from lab.spec import LabSpec

#: A monitored drill's promtool fixture, in its report directory.
RULE_TEST = "rules.test.yml"

TWO_MASTERS = "RedisTooManyMasters"
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
    "freeze-master": (  # thawed, the old master says master until Sentinel converts it (8 s later, and more)
        frozenset({"RedisDown", "RedisTooManyMasters", "RedisFailover"}),
        frozenset({"RedisNoMaster", "SentinelQuorumLost", "SentinelDown", "SentinelTilt"}),
    ),
    "isolate-master": (
        frozenset({"RedisTooManyMasters", "RedisFailover"}),
        frozenset({"RedisNoMaster", "RedisDown", "SentinelQuorumLost", "SentinelDown"}),
    ),
    "failover": (frozenset({"RedisFailover"}), frozenset(PAGES)),
    "failover-coordinated": (frozenset({"RedisFailover"}), frozenset(PAGES)),
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

    def finish(self, recorder: Recorder, scenario: str, report_dir: Path | None = None) -> None:
        """Wait for the alerts to resolve, then add what Prometheus and the webhook saw to the history; with a
        ``report_dir``, write there a promtool fixture of the drill (:data:`RULE_TEST`) and the rules it tests."""
        alerts.wait_quiet(self.spec, QUIET_AFTER_S)
        # An alert resolves at the first evaluation without it: two evaluations more put that one in the span.
        time.sleep(2 * api.monitoring_of(self.spec).evaluation_s)
        history = recorder.history
        epoch = history.clock.epoch_ms / 1000
        end = time.time()

        def on_clock(unix: float) -> float:
            return round((unix - epoch) * 1000, 3)

        mon = api.monitoring_of(self.spec)
        history.add(
            "monitoring", t=on_clock(self.since), scrape_s=mon.scrape_s, evaluation_s=mon.evaluation_s,
            rules_for=rule_timers((self.spec.base_dir / RULES_FILE).read_text()),
        )  # fmt: skip
        changes = alerts.transitions(self.spec, self.since, end)
        last = None
        for at, status in alerts.health(self.spec, self.since, end):  # check-redis-health's verdicts, as they change
            if status != last:
                history.add("health", t=on_clock(at), status=status)
                last = status
        if report_dir is not None:
            self.write_rule_test(report_dir, scenario, changes, end)
        for change in changes:
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

    def write_rule_test(self, directory: Path, scenario: str, changes: list[alerts.Transition], end: float) -> None:
        """``rules.test.yml``: the drill as a `promtool test rules` fixture (lab.monitoring.ruletest), beside the
        shipped rules the lab ran (``redis-ha.rules.yml``): `promtool test rules rules.test.yml` replays it."""
        import yaml

        rules_path = self.spec.base_dir / RULES_FILE
        text = rules_path.read_text()
        alert_rules = [r for g in yaml.safe_load(text)["groups"] for r in g["rules"] if "alert" in r]
        annotations = {r["alert"]: r.get("annotations", {}) for r in alert_rules}
        step = api.monitoring_of(self.spec).evaluation_s
        series = ruletest.record(self.spec, ruletest.rule_metrics(text), self.since, end)
        quiet = sorted(EXPECTED.get(scenario, (frozenset(), frozenset()))[1])
        doc = ruletest.fixture(series, changes, (self.since, end), step, annotations, quiet, Path(RULES_FILE).name)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / Path(RULES_FILE).name).write_text(text)
        (directory / RULE_TEST).write_text(yaml.safe_dump(doc, sort_keys=False, width=1 << 16))


def rule_timers(rules_text: str) -> dict[str, float]:
    """Each alert rule's ``for`` in seconds (0 without one)."""
    import yaml

    from lab.monitoring.config import seconds

    rules = [r for g in yaml.safe_load(rules_text)["groups"] for r in g["rules"] if "alert" in r]
    return {r["alert"]: seconds(r["for"]) if "for" in r else 0.0 for r in rules}


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
    did not) and ``false`` (must stay quiet, fired). An unlisted scenario has none.

    Two masters are judged by what the drill saw, not by the scenario's name: when the role samples show two
    masters at once (a second failover after a kill, say: redis/redis#8607), RedisTooManyMasters is no longer
    bound to stay quiet, and when they show them for longer than the rule needs to fire (its ``for`` plus a
    scrape and an evaluation, with a second to spare), it must fire."""
    must, quiet = EXPECTED.get(scenario, (frozenset(), frozenset()))
    longest = max((w.ms for w in masters_at_once(records)), default=0.0)
    if longest > 0:
        quiet = quiet - {TWO_MASTERS}
        setup = next((r for r in records if r["type"] == "monitoring"), None)
        if setup is not None:
            needs = setup["rules_for"].get(TWO_MASTERS, 0) + setup["scrape_s"] + setup["evaluation_s"] + 1
            must = must | {TWO_MASTERS} if longest >= needs * 1000 else must
    seen = fired(records)
    return {"missed": sorted(must - seen), "false": sorted(quiet & seen)}


def unnoticed_pages(records: list[Record]) -> list[str]:
    """The shipped page alerts that fired in the drill while check-redis-health, scraped beside them, said OK
    the whole time (from two seconds before the alert went pending until it resolved): where the two disagree."""
    health = [(r["t"], r["status"]) for r in records if r["type"] == "health"]
    if not health:
        return []
    end = max(r["t"] for r in records)
    unnoticed = []
    for row in alert_rows(records):
        if row.source != "redis-ha-lab" or row.severity != "page" or row.firing_ms is None:
            continue
        start, stop = (row.pending_ms or row.firing_ms) - 2000, row.resolved_ms or end
        # the status in force at ``start`` (the last change before it) and every change until ``stop``
        before = [s for t, s in health if t <= start][-1:]
        during = [s for t, s in health if start < t <= stop]
        if all(s == 0 for s in before + during):
            unnoticed.append(row.alert)
    return unnoticed


def first_fault_ms(records: list[Record]) -> float | None:
    return next((r["t"] for r in records if r["type"] == "fault" and r["action"] == "inject"), None)
