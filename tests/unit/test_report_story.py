"""What a reader of report.html and timeline.png is told, from hand-written histories: the opening
sentence for each kind of scenario (and what did not happen), and what the picture marks."""

from __future__ import annotations

from typing import Any

import pytest
from matplotlib.collections import PathCollection

from lab.drill.checker import check
from lab.drill.report import fault_list
from lab.drill.story import story, summary_rows
from lab.drill.timeline import timeline_figure
from tests.unit.test_checker import NAMES, A, B, C, final, op, role, steady, switch

NODES = ["redis-1", "redis-2", "redis-3"]


def fault(t: float, action: str, kind: str, node: str) -> dict[str, Any]:
    return {"t": t, "type": "fault", "action": action, "fault": kind, "node": node}


def drill(t: float, event: str) -> dict[str, Any]:
    return {"t": t, "type": "drill", "event": event, "scenario": "x"}


def event(t: float, sentinel: str, name: str) -> dict[str, Any]:
    return {"t": t, "type": "sentinel", "sentinel": sentinel, "event": name, "data": "master mymaster 10.0.0.1 6379"}


def roles(start: float, end: float, **by_node: str) -> list[dict[str, Any]]:
    """A role sample of each node every 100 ms."""
    return [role(t, node, r) for t in range(int(start), int(end), 100) for node, r in by_node.items()]


def kill_master(*, odown: bool = True, promoted: bool = True, rejoined: bool = True) -> list[dict[str, Any]]:
    """redis-1 killed at 1 s; the Sentinels agree at 2.1 s, redis-3 is master at 2.4 s (announced at
    3.2 s); the clients write to it from 3.3 s; the heal at 8.05 s; redis-1 a replica at 8.4 s."""
    history = [
        drill(0, "start"),
        *roles(0, 1000, **{"redis-1": "master", "redis-2": "replica", "redis-3": "replica"}),
        fault(1000, "inject", "kill", "redis-1"),
        fault(1010, "applied", "kill", "redis-1"),
        *steady(0, 1000),
        drill(8000, "stop"),
        drill(8050, "heal"),
        fault(8300, "revert", "kill", "redis-1"),
        final([]),
    ]
    if odown:
        history.append(event(2100, "sentinel-1", "+odown"))
    if promoted:
        history += [
            *roles(1000, 2400, **{"redis-1": "down", "redis-2": "replica", "redis-3": "replica"}),
            *roles(2400, 8400, **{"redis-1": "down", "redis-2": "replica", "redis-3": "master"}),
            *(switch(3200, s, A, C) for s in ("sentinel-1", "sentinel-2", "sentinel-3")),
            *steady(3300, 8000, "redis-3", "n"),
        ]
        if rejoined:
            history += roles(8400, 9000, **{"redis-1": "replica", "redis-2": "replica", "redis-3": "master"})
    else:
        history += roles(1000, 8000, **{"redis-1": "down", "redis-2": "replica", "redis-3": "replica"})
    return history


def test_a_killed_master_is_told_from_the_kill_to_the_old_master_rejoining() -> None:
    history = kill_master()
    assert story(history, check(history, NAMES)) == (
        "redis-1 was killed (SIGKILL) at 1.00 s; the Sentinels agreed the master was down at 2.10 s; redis-3 was "
        "promoted at 2.40 s (the Sentinels announced it at 3.20 s); clients wrote again at 3.30 s (2.31 s without "
        "an acknowledged write); redis-1 rejoined as a replica at 8.40 s after the heal; 0 acknowledged writes lost."
    )


def test_what_did_not_happen_is_said() -> None:
    history = kill_master(odown=False, promoted=False)
    text = story(history, check(history, NAMES))
    assert "the Sentinels never agreed the master was down; no replica was promoted" in text
    assert "clients had not written again when the workload stopped at 8.00 s" in text
    assert "redis-1 had not rejoined as a replica when the recording ended" in text
    history = kill_master(rejoined=False)
    assert "redis-1 had not rejoined as a replica" in story(history, check(history, NAMES))


def test_a_frozen_master_thawed_as_a_second_master_is_told_with_its_losses() -> None:
    history = [
        drill(0, "start"),
        *roles(0, 1000, **{"redis-1": "master", "redis-2": "replica", "redis-3": "replica"}),
        fault(1000, "inject", "freeze", "redis-1"),
        fault(1005, "applied", "freeze", "redis-1"),
        *steady(0, 1000),
        *roles(1000, 3000, **{"redis-1": "down", "redis-2": "master", "redis-3": "replica"}),
        *(switch(3000, s, A, B) for s in ("sentinel-1", "sentinel-2")),
        fault(6000, "revert", "freeze", "redis-1"),
        *roles(3000, 6000, **{"redis-1": "down", "redis-2": "master", "redis-3": "replica"}),
        *roles(6000, 8500, **{"redis-1": "master", "redis-2": "master", "redis-3": "replica"}),  # the zombie
        op(6000, "ok", "write", "zombie-1"),
        *steady(6010, 8500, "redis-1", "z"),
        *roles(8500, 10000, **{"redis-1": "replica", "redis-2": "master", "redis-3": "replica"}),
        *steady(8600, 10000, "redis-2", "n"),
        drill(10000, "stop"),
        final(["zombie-1", *(f"z{t}" for t in range(6010, 8500, 10))]),
    ]
    findings = check(history, NAMES)
    text = story(history, findings)
    assert text.startswith("redis-1 was frozen (SIGSTOP) at 1.00 s; redis-1 was thawed at 6.00 s; ")
    assert "redis-2 was promoted at 1.00 s (the Sentinels announced it at 3.00 s)" in text
    assert "but nothing they wrote from 0.99 s to 8.60 s was kept" in text
    assert "redis-1 and redis-2 were both masters while the workload ran for 2.50 s from 6.00 s" in text
    assert "redis-1 rejoined as a replica at 8.50 s;" in text
    assert text.endswith("; 250 acknowledged writes lost.")
    figure = timeline_figure(history, findings, NODES, "freeze-master")
    labels = _legend(figure)
    assert "two masters" in labels and "fault in effect" in labels
    lanes = figure.axes[0]
    assert {"freeze redis-1", "thawed redis-1"} <= {t.get_text() for t in lanes.texts}
    bands = [p for p in lanes.patches if p.get_hatch() == "xx"]
    assert [(round(b.get_x(), 2), round(b.get_x() + b.get_width(), 2)) for b in bands] == [(6.0, 8.5)]


def test_a_one_way_isolation_is_told_as_one_way() -> None:
    """Once the story said a master 'was cut off from every other node' when only what it sent was dropped."""
    history = [
        drill(0, "start"),
        *roles(0, 10000, **{"redis-1": "master", "redis-2": "replica", "redis-3": "replica"}),
        *steady(0, 10000),
        {**fault(1000, "inject", "isolate", "redis-1"), "how": "out"},
        {**fault(1200, "applied", "isolate", "redis-1"), "how": "out"},
        {**fault(7000, "revert", "isolate", "redis-1"), "how": "out"},
        drill(10000, "stop"),
        final([f"k{t}" for t in range(0, 10000, 100)]),
    ]
    text = story(history, check(history, NAMES))
    assert text.startswith(
        "redis-1 heard every other node while what it sent them was lost (a one-way partition) at 1.00 s (in effect"
    ), text
    assert "cut off from every other node" not in text


def test_an_isolation_slow_to_apply_is_stamped_from_its_start() -> None:
    history = [
        drill(0, "start"),
        *roles(0, 10000, **{"redis-1": "master", "redis-2": "replica", "redis-3": "replica"}),
        *steady(0, 10000),
        fault(1000, "inject", "isolate", "redis-1"),
        fault(3700, "applied", "isolate", "redis-1"),
        fault(7000, "revert", "isolate", "redis-1"),
        drill(10000, "stop"),
        final(["k3500", "k3800"]),
    ]
    findings = check(history, NAMES)
    text = story(history, findings)
    assert text.startswith("redis-1 was cut off from every other node at 1.00 s (in effect at 3.70 s); ")
    assert "redis-1 was reconnected at 7.00 s; the Sentinels never agreed the master was down" in text
    assert "clients never went more than 0.1 s without an acknowledged write" in text
    assert findings.lost_acked is not None
    assert findings.lost_acked.detail == (
        "lost writes acknowledged from 0.20 s before to 0.10 s after the isolate of redis-1 took effect"
    )
    [inject, revert] = fault_list(history)
    assert (inject["t"], inject["applied"], revert["action"], revert["t"]) == (1000, 3700, "revert", 7000)
    figure = timeline_figure(history, findings, NODES, "isolate-master")
    assert "fault being applied" in _legend(figure)
    grey = [
        p for p in figure.axes[0].patches if p.get_facecolor()[:3] == pytest.approx((0.498, 0.549, 0.553), abs=0.01)
    ]
    assert [(round(p.get_x(), 2), round(p.get_x() + p.get_width(), 2)) for p in grey] == [(1.0, 3.7)]


def test_a_lost_sentinel_needs_no_failover_and_says_so() -> None:
    history = [
        drill(0, "start"),
        *roles(0, 3000, **{"redis-1": "master", "redis-2": "replica", "redis-3": "replica"}),
        fault(1000, "inject", "kill", "sentinel-1"),
        fault(1003, "applied", "kill", "sentinel-1"),
        *steady(0, 3000),
        drill(3000, "stop"),
        final([]),
    ]
    assert story(history, check(history, NAMES)) == (
        "sentinel-1 was killed (SIGKILL) at 1.00 s; no failover happened; clients never went more than 0.1 s "
        "without an acknowledged write; 0 acknowledged writes lost."
    )


def test_a_power_cut_is_one_clause_for_every_node() -> None:
    everyone = ["sentinel-1", "redis-1", "redis-2"]
    history = [
        drill(0, "start"),
        *steady(0, 1000),
        *(fault(1000, "inject", "stop", n) for n in everyone),
        *(fault(1400, "applied", "stop", n) for n in everyone),
        *(fault(2500, "revert", "stop", n) for n in everyone),
        *steady(2600, 4000),
        drill(4000, "stop"),
        final([]),
    ]
    findings = check(history, NAMES)
    labels = {t.get_text() for t in timeline_figure(history, findings, NODES, "restart-all").axes[0].texts}
    assert {"stop 3 nodes", "restarted 3 nodes", "heal"} - labels == {"heal"}, labels  # (no heal here)
    text = story(history, findings)
    assert text.startswith(
        "sentinel-1, redis-1 and redis-2 were stopped (SIGTERM) at 1.00 s (in effect at 1.40 s); they were started "
        "again at 2.50 s; no failover happened; clients wrote again at 2.60 s (1.61 s without an acknowledged write)"
    ), text


def test_a_safe_failover_and_a_rolling_upgrade_are_told_by_their_steps() -> None:
    safe = [
        drill(0, "start"),
        *roles(0, 4000, **{"redis-1": "master", "redis-2": "replica"}),
        fault(1000, "inject", "failover", "redis-1"),
        *steady(0, 1500),
        switch(1700, "sentinel-1", A, B),
        fault(2200, "revert", "failover", "redis-1"),
        *steady(1800, 4000, "redis-2", "n"),
        drill(4000, "stop"),
        final([]),
    ]
    text = story(safe, check(safe, NAMES))
    assert text.startswith("a safe failover away from redis-1 began at 1.00 s and returned at 2.20 s; ")
    assert "; redis-2 was promoted at 1.70 s; clients wrote again at 1.80 s (0.31 s without" in text
    steps = [drill(0, "start"), *steady(0, 9000)]
    for i, node in enumerate(["redis-2", "redis-3", "redis-1"]):
        if node == "redis-1":
            steps += [fault(3000, "inject", "failover", "redis-1"), fault(3500, "revert", "failover", "redis-1")]
        steps += [fault(1000 + 2000 * i, "inject", "upgrade", node), fault(2000 + 2000 * i, "revert", "upgrade", node)]
    steps += [drill(9000, "stop"), final([])]
    text = story(steps, check(steps, NAMES))
    assert text.startswith("3 nodes were upgraded one by one from 1.00 s to 6.00 s with 1 safe failover on the way; ")


def test_the_summary_has_labels_and_units_and_two_masters() -> None:
    history = kill_master()
    rows = dict(summary_rows(check(history, NAMES).as_dict()))
    assert rows["two masters at once (role samples)"] == "0.00 s"
    assert rows["longest unavailability"] == "2.31 s" and rows["acknowledged writes lost"] == "0"
    assert not any("_ms" in label for label in rows)


def test_the_legend_names_only_what_the_picture_shows() -> None:
    history = kill_master()
    figure = timeline_figure(history, check(history, NAMES), NODES, "kill-master")
    labels = _legend(figure)
    assert {"master", "replica", "down", "failover (+switch-master)", "no write acknowledged", "ok"} <= labels
    assert not labels & {"error", "unknown", "two masters", "two nodes acknowledging", "fault being applied"}
    assert "heal" in {t.get_text() for t in figure.axes[0].texts}
    diamonds = [c for c in figure.axes[0].collections if isinstance(c, PathCollection)]
    assert len(diamonds) == 1, "one marker per failover, not one per Sentinel that announced it"


def _legend(figure: Any) -> set[str]:
    return {t.get_text() for axis in figure.axes if axis.get_legend() for t in axis.get_legend().get_texts()}
