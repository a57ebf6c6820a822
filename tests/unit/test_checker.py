"""The history checker on hand-written histories: each finding produced on purpose, nothing else."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from lab.drill.checker import check, fault_spans
from lab.drill.events import decisions
from lab.drill.history import History, RoleSampler
from lab.spec import Node
from tests.helpers import make_spec

A, B, C = "10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"
NAMES = {A: "redis-1", B: "redis-2", C: "redis-3"}


def op(t: float, kind: str, f: str, key: str, node: str | None = "redis-1", **extra: Any) -> dict[str, Any]:
    return {"t": t, "type": kind, "process": 0, "f": f, "key": key, "value": 1, "node": node, **extra}


def role(t: float, node: str, role_: str) -> dict[str, Any]:
    return {"t": t, "type": "role", "node": node, "role": role_, "offset": 0, "master": None}


def switch(t: float, sentinel: str, old: str, new: str) -> dict[str, Any]:
    (oh, op_), (nh, np_) = old.split(":"), new.split(":")
    return {
        "t": t,
        "type": "sentinel",
        "sentinel": sentinel,
        "event": "+switch-master",
        "data": f"m {oh} {op_} {nh} {np_}",
    }


def final(absent: list[str], node: str = "redis-2", counters: dict[str, int] | None = None) -> dict[str, Any]:
    return {"t": 99_999, "type": "final", "node": node, "checked": 0, "absent": absent, "counters": counters or {}}


def steady(start: float, end: float, node: str = "redis-1", prefix: str = "k") -> list[dict[str, Any]]:
    """One acknowledged write every 10 ms."""
    return [op(t, "ok", "write", f"{prefix}{t}", node) for t in range(int(start), int(end), 10)]


def test_a_clean_history_has_no_findings() -> None:
    findings = check([role(0, "redis-1", "master"), *steady(0, 1000), final([])], NAMES)
    summary = findings.summary()
    assert summary["lost"] == summary["stale_reads"] == summary["failovers"] == summary["indeterminate"] == 0
    assert findings.unavailable == [] and findings.split_brain == [] and findings.two_masters == []


def test_an_acknowledged_write_absent_after_the_heal_is_lost() -> None:
    history = [*steady(0, 500), op(500, "ok", "write", "gone"), *steady(510, 1000), final(["gone"])]
    findings = check(history, NAMES)
    assert (findings.lost, findings.lost_examples) == (1, ["gone"])


def test_indeterminate_writes_are_counted_with_how_many_survived() -> None:
    history = [
        *steady(0, 300),
        op(300, "info", "write", "maybe-1", None, error="TimeoutError"),
        op(310, "info", "write", "maybe-2", None, error="TimeoutError"),
        op(320, "fail", "write", "refused", None, error="ReadOnlyError"),
        *steady(330, 600),
        final(["maybe-2"]),
    ]
    findings = check(history, NAMES)
    assert (findings.indeterminate, findings.indeterminate_survived, findings.lost) == (2, 1, 0)
    assert findings.errored_but_applied == 1, "told READONLY, yet the key is there"
    assert findings.errors == {"TimeoutError": 2, "ReadOnlyError": 1}


def test_a_read_that_misses_an_acknowledged_write_is_stale_whoever_served_it() -> None:
    history = [
        role(0, "redis-1", "master"),
        *steady(0, 400),
        switch(400, "sentinel-1", A, B),
        op(440, "invoke", "read", "k0", None),
        op(450, "ok", "read", "k0", "redis-1", value="1"),  # the old master still answered, rightly
        op(455, "invoke", "read", "k10", None),
        op(460, "ok", "read", "k10", "redis-2", value=None),  # the new master lacks an acknowledged write
        *steady(470, 800, "redis-2", "n"),
        final([]),
    ]
    findings = check(history, NAMES)
    assert findings.stale_reads == 1 and findings.stale_read_examples == ["k10 read None from redis-2 at 0.46s"]
    assert findings.old_master_reads == 1 and findings.summary()["old_master_reads"] == 1


def test_a_read_sent_before_the_write_was_acknowledged_is_not_stale() -> None:
    history = [
        op(0, "invoke", "write", "k", None),
        op(5, "invoke", "read", "k", None),
        op(10, "ok", "write", "k", "redis-1"),
        op(12, "ok", "read", "k", "redis-1", value=None),
        final([]),
    ]
    assert check(history, NAMES).stale_reads == 0


def test_a_master_whose_writes_a_safe_failover_held_is_not_a_second_master() -> None:
    # A safe failover pauses redis-1's writes, redis-2 is promoted, redis-1 says master until it is
    # turned into a replica: no write can land on it meanwhile.
    history = [
        {"t": 0, "type": "drill", "event": "start"},
        *(role(t, "redis-1", "master") for t in range(0, 1500, 100)),
        role(1500, "redis-1", "replica"),
        *(role(t, "redis-2", "master") for t in range(1000, 3000, 100)),
        {"t": 800, "type": "pause", "node": "redis-1", "event": "start"},
        {"t": 1550, "type": "pause", "node": "redis-1", "event": "end"},
        *steady(0, 800),
        *steady(1600, 3000, "redis-2", "n"),
        {"t": 3000, "type": "drill", "event": "stop"},
        final([]),
    ]
    findings = check(history, NAMES)
    assert findings.two_masters == [] and findings.summary()["two_masters_ms"] == 0
    assert [(w.start_ms, w.end_ms) for w in findings.paused_master] == [(1000.0, 1500.0)]
    # The hold ended between the old master's last sample as master and its first as a replica (seen in CI,
    # compose: sampled master at 4.15 s, the hold lifted at 4.39 s, a replica at 4.55 s): not two masters either.
    late = [r for r in history if not (r["type"] == "role" and r["node"] == "redis-1" and r["t"] >= 1400)]
    late += [role(1450, "redis-1", "master"), role(1800, "redis-1", "replica")]
    late = [{**r, "t": 1650} if r["type"] == "pause" and r["event"] == "end" else r for r in late]
    assert check(late, NAMES).two_masters == []
    # The same history without the pause is two masters.
    unpaused = check([r for r in history if r["type"] != "pause"], NAMES)
    assert [(w.start_ms, w.end_ms) for w in unpaused.two_masters] == [(1000.0, 1500.0)]


def test_a_role_sample_is_stamped_when_it_was_asked_for(tmp_path: Path) -> None:
    """A reply can come back after the role changed (the old master answers INFO, then `lab failover`
    demotes it and lifts the hold before the reply is read): stamped when answered, it read as a master
    after the hold, 500 ms of two masters (CI, loaded). Stamped when asked, it is inside the hold."""
    answered: list[float] = []

    class SlowReply(RoleSampler):
        def _sample(self, node: Node) -> dict[str, Any]:
            time.sleep(0.05)  # the reply is on its way
            answered.append(self.history.clock.ms())
            return {"node": node.name, "role": "master", "offset": 0, "master": None}

        def _background(self, node: Node) -> None:
            pass

    history = History()
    sampler = SlowReply(make_spec(tmp_path), history, interval=0.01).start()
    time.sleep(0.3)
    sampler.stop()
    roles = [r for r in history.records if r["type"] == "role"]
    assert roles and all(r["t"] <= seen - 45 for r, seen in zip(roles, answered, strict=False)), (roles, answered)


def fake_looks(monkeypatch: pytest.MonkeyPatch, looks: list[tuple[dict[str, int], dict[str, int]]]) -> None:
    """node_client gives INFO persistence, then INFO stats, of the next look."""
    replies = iter(looks)

    class Node_:
        def __enter__(self) -> Node_:
            self.persistence, self.stats = next(replies)
            return self

        def __exit__(self, *_: object) -> None:
            pass

        def info(self, section: str) -> dict[str, int]:
            return self.persistence if section == "persistence" else self.stats

    monkeypatch.setattr("lab.drill.history.node_client", lambda *_a, **_k: Node_())


def background_records(tmp_path: Path, looks: int) -> list[tuple[str, int, float]]:
    history = History()
    sampler = RoleSampler(make_spec(tmp_path), history)
    node = make_spec(tmp_path).redis_nodes[0]
    for _ in range(looks):
        sampler._background(node)
    return [(r["what"], r["forks"], r["fork_ms"]) for r in history.records]


def test_a_rewrite_and_a_save_in_one_look_are_two_records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The forks are looked at about once a second: a rewrite and a save a second apart can fall in one
    look (CI, compose, loaded: the save was missing from the report). Each kind gets its record."""
    fake_looks(
        monkeypatch,
        [
            ({"aof_rewrites": 1, "rdb_saves": 1, "rdb_last_save_time": 100, "aof_base_size": 90}, {"total_forks": 3}),
            (
                {"aof_rewrites": 2, "rdb_saves": 2, "rdb_last_save_time": 160, "aof_base_size": 900},
                {"total_forks": 6, "latest_fork_usec": 2500},
            ),
        ],
    )
    assert background_records(tmp_path, 2) == [
        ("AOF rewrite", 1, 2.5),
        ("RDB save", 1, 2.5),
        ("fork", 1, 2.5),  # the third fork: a replica's full sync
    ]


def test_a_finished_rewrite_is_named_on_a_build_without_the_counters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis 6.2 has no aof_rewrites counter: a rewrite over before the look (a small data set, CI) was
    reported as a bare "fork". The AOF's base size, which each rewrite resets, names it; one seen running is
    not counted again when it ends (a 6.2 rewrite takes a second: a save then was reported as two forks)."""
    fake_looks(
        monkeypatch,
        [
            ({"rdb_last_save_time": 100, "aof_base_size": 90}, {"total_forks": 1}),
            ({"rdb_last_save_time": 100, "aof_base_size": 5000}, {"total_forks": 2, "latest_fork_usec": 300}),
            ({"rdb_last_save_time": 103, "aof_base_size": 5000}, {"total_forks": 3, "latest_fork_usec": 400}),
            # a rewrite still running at a look (counted then), over at the next, which also saw a save
            (
                {"rdb_last_save_time": 103, "aof_base_size": 5000, "aof_rewrite_in_progress": 1},
                {"total_forks": 4, "latest_fork_usec": 500},
            ),
            ({"rdb_last_save_time": 110, "aof_base_size": 9000}, {"total_forks": 5, "latest_fork_usec": 600}),
        ],
    )
    assert background_records(tmp_path, 5) == [
        ("AOF rewrite", 1, 0.3),
        ("RDB save", 1, 0.4),
        ("AOF rewrite", 1, 0.5),
        ("RDB save", 1, 0.6),
    ]


def promote(t: float, sentinel: str, replica: str) -> dict[str, Any]:
    host, port = replica.split(":")
    data = f"slave {replica} {host} {port} @ mymaster 10.0.0.3 6379"
    return {
        "t": t,
        "type": "sentinel",
        "sentinel": sentinel,
        "event": "+failover-state-send-slaveof-noone",
        "data": data,
    }


def test_two_sentinels_promoting_at_once_is_a_note() -> None:
    """A forced failover takes no votes: a Sentinel that finds the paused master down meanwhile can win an
    election in the same epoch and promote another replica (CI, loaded: 200 ms of two masters)."""
    raced = [promote(2170, "sentinel-1", B), promote(2914, "sentinel-2", A), final([])]
    notes = check(raced, NAMES).notes
    assert notes == [
        "two Sentinels failed the master over at once: sentinel-1 promoted redis-2 at 2.17 s, "
        "sentinel-2 promoted redis-1 at 2.91 s (redis-2 and redis-1 both became masters)"
    ]
    assert (
        "both promoted redis-2"
        in check([promote(2170, "sentinel-1", B), promote(2914, "sentinel-2", B)], NAMES).notes[-1]
    )
    # One Sentinel's failover, or two failovers far apart, is no race.
    apart = [promote(2170, "sentinel-1", B), promote(30_000, "sentinel-2", A), final([])]
    assert check(apart, NAMES).notes == [] and check([promote(2170, "sentinel-1", B), final([])], NAMES).notes == []


def said(t: float, sentinel: str, event: str, data: str = "master mymaster 10.0.0.1 6379") -> dict[str, Any]:
    return {"t": t, "type": "sentinel", "sentinel": sentinel, "event": event, "data": data}


def test_what_kept_the_sentinels_from_failing_over_is_a_note() -> None:
    """TILT and a given-up failover are the Sentinels' own words for a drill's long outage: each is a note,
    in order; the failover steps that went on are not."""
    history = [
        said(3100, "sentinel-2", "+tilt", "#tilt mode entered"),
        said(2050, "sentinel-1", "+try-failover"),
        said(7050, "sentinel-1", "-failover-abort-not-elected"),
        said(9000, "sentinel-3", "+failover-state-select-slave"),
        said(9500, "sentinel-3", "-failover-abort-no-good-slave"),
        final([]),
    ]
    assert check(history, NAMES).notes == [
        "sentinel-2 entered TILT (its clock moved over 2 s between two ticks, or back): it acts on nothing for at "
        "least 30 s (+tilt at 3.10 s)",
        "sentinel-1 gave its failover up, not elected: it tries again no sooner than twice failover-timeout after "
        "it began (-failover-abort-not-elected at 7.05 s)",
        "sentinel-3 gave its failover up: no replica it could promote (-failover-abort-no-good-slave at 9.50 s)",
    ]
    # A test that wanted a failover and saw none prints what the Sentinels decided, in order.
    assert decisions(history) == (
        "2.05 sentinel-1 +try-failover; 3.10 sentinel-2 +tilt; 7.05 sentinel-1 -failover-abort-not-elected; "
        "9.50 sentinel-3 -failover-abort-no-good-slave"
    )


def test_two_nodes_acknowledging_writes_at_once_is_split_brain() -> None:
    history = [
        *steady(0, 1000, "redis-1", "a"),
        *steady(405, 705, "redis-2", "b"),  # a new master while the old one still takes writes
        role(500, "redis-1", "master"),
        role(500, "redis-2", "master"),
        final([]),
    ]
    findings = check(history, NAMES)
    assert [(w.start_ms, w.end_ms) for w in findings.split_brain] == [(400.0, 700.0)]
    assert findings.split_brain[0].detail == "acknowledged by redis-1, redis-2"
    assert [(w.start_ms, w.end_ms) for w in findings.two_masters] == [(500.0, 600.0)]


def test_two_failovers_are_counted_once_whatever_every_sentinel_announces() -> None:
    history = [
        *steady(0, 200),
        switch(300, "sentinel-1", A, B),
        switch(301, "sentinel-2", A, B),
        switch(305, "sentinel-3", A, B),
        switch(1300, "sentinel-1", B, C),
        switch(1302, "sentinel-3", B, C),  # sentinel-2 was down for the second
        {"t": 290, "type": "sentinel", "sentinel": "sentinel-1", "event": "+new-epoch", "data": "1"},
        {"t": 1290, "type": "sentinel", "sentinel": "sentinel-1", "event": "+new-epoch", "data": "2"},
        *steady(1400, 1600, "redis-3"),
        final([], node="redis-3"),
    ]
    findings = check(history, NAMES)
    assert [(f["old"], f["new"]) for f in findings.failovers] == [("redis-1", "redis-2"), ("redis-2", "redis-3")]
    assert findings.epochs == [1, 2]


def test_unavailability_is_the_gaps_between_acknowledged_writes() -> None:
    history = [*steady(0, 1000), *steady(3200, 4000), *steady(4500, 5000), final([])]
    findings = check(history, NAMES)
    assert [(w.start_ms, w.end_ms) for w in findings.unavailable] == [(990.0, 3200.0), (3990.0, 4500.0)]
    assert findings.summary()["unavailable_ms"] == 2210.0
    assert findings.summary()["unavailable_total_ms"] == 2720.0


def test_the_nothing_kept_window_counts_lost_writes_as_not_kept() -> None:
    # Writes were acknowledged throughout, but those between 1 s and 2 s went to a zombie and were lost.
    history = [*steady(0, 1000), *steady(1000, 2000, "redis-1", "z"), *steady(2000, 3000, "redis-2", "n")]
    lost = [f"z{t}" for t in range(1000, 2000, 10)]
    findings = check([*history, final(lost)], NAMES)
    assert findings.unavailable == []
    assert findings.lost == 100 and findings.summary()["nothing_kept_ms"] == 1010.0
    assert findings.lost_acked is not None and (findings.lost_acked.start_ms, findings.lost_acked.end_ms) == (
        1000,
        1990,
    )
    assert check([*history, final([])], NAMES).lost_acked is None, "nothing lost, no window"


@pytest.mark.parametrize(
    ("acked", "info", "value", "lost", "survived", "applied"),
    [(10, 0, 10, 0, 0, 0), (10, 0, 7, 3, 0, 0), (10, 3, 12, 0, 2, 0), (10, 1, 13, 0, 1, 2)],
)
def test_a_counter_is_checked_against_its_acknowledged_increments(
    acked: int, info: int, value: int, lost: int, survived: int, applied: int
) -> None:
    history = [op(i * 10, "ok", "incr", "c") for i in range(acked)]
    history += [op(500 + i, "info", "incr", "c", None, error="TimeoutError") for i in range(info)]
    findings = check([*history, final([], counters={"c": value})], NAMES)
    assert findings.workload == "counter"
    assert (findings.lost, findings.indeterminate_survived, findings.errored_but_applied) == (lost, survived, applied)


def test_without_a_final_read_nothing_is_called_lost() -> None:
    findings = check(steady(0, 500), NAMES)
    assert findings.lost == 0 and findings.notes == ["no final read: lost writes cannot be counted"]


def test_an_operation_that_never_completed_is_indeterminate() -> None:
    stuck = {"t": 500, "type": "invoke", "process": 1, "f": "write", "key": "stuck", "value": 1}
    findings = check([*steady(0, 1000), stuck, final([])], NAMES)
    assert findings.indeterminate == 1 and findings.indeterminate_survived == 1
    assert findings.unavailable == [], "the stuck operation does not stretch the workload's end"


def test_a_list_workload_finds_lost_resent_and_applied_values() -> None:
    def push(t: float, kind: str, value: int, **extra: Any) -> dict[str, Any]:
        return {"t": t, "type": kind, "process": 0, "f": "rpush", "key": "l", "value": value, **extra}

    history = [push(i * 10, "ok", i) for i in range(1, 6)]  # 1..5 acknowledged
    history += [push(60, "info", 6, error="timeout"), push(70, "fail", 7, error="READONLY")]
    # 2 was lost, 3 landed twice (resent after a reconnect), the unknown 6 and the refused 7 both landed
    lists = {"l": [1, 3, 3, 4, 5, 6, 7]}
    findings = check([*history, {"t": 9_999, "type": "final", "node": "redis-2", "lists": lists, "absent": []}], NAMES)
    assert findings.workload == "list"
    assert (findings.lost, findings.lost_examples) == (1, ["l=2"])
    assert (findings.duplicated, findings.indeterminate_survived, findings.errored_but_applied) == (1, 1, 1)


def test_a_client_stuck_until_the_end_is_unavailable_until_the_workload_stopped() -> None:
    marks = [{"t": 0, "type": "drill", "event": "start"}, {"t": 8000, "type": "drill", "event": "stop"}]
    stuck = {"t": 1005, "type": "invoke", "process": 0, "f": "write", "key": "stuck", "value": 1}
    findings = check([*marks, *steady(0, 1000), stuck, final(["stuck"])], NAMES)
    assert [(w.start_ms, w.end_ms) for w in findings.unavailable] == [(990.0, 8000.0)]


def test_a_read_that_answered_is_not_an_operation_left_unanswered() -> None:
    """A read's completion carries the value it read; its invoke has none: they are one operation."""
    invoke = {"t": 500, "type": "invoke", "process": 0, "f": "read", "key": "k0", "value": None}
    answered = {"t": 501, "type": "ok", "process": 0, "f": "read", "key": "k0", "value": "7", "node": "redis-1"}
    findings = check([role(0, "redis-1", "master"), *steady(0, 1000), invoke, answered, final([])], NAMES)
    assert findings.errors == {} and findings.operations["read"] == {"ok": 1, "fail": 0, "info": 0}


def test_each_step_gets_its_own_unavailability_and_losses() -> None:
    def mark(t: float, event: str, step: str) -> dict[str, Any]:
        return {"t": t, "type": "step", "event": event, "step": step}

    history = [
        mark(0, "start", "redis-2 to redis-7.0"),
        *steady(0, 400),
        mark(400, "end", "redis-2 to redis-7.0"),
        mark(400, "start", "failover away from redis-1"),
        op(450, "ok", "write", "gone"),
        *steady(1450, 2000),  # a 1 s gap inside the failover step
        mark(2000, "end", "failover away from redis-1"),
        final(["gone"]),
    ]
    steps = check(history, NAMES).steps
    assert [(s["step"], s["unavailable_ms"], s["lost"]) for s in steps] == [
        ("redis-2 to redis-7.0", 0.0, 0),
        ("failover away from redis-1", 1000.0, 1),
    ]


def _fault(t: float, action: str, kind: str, node: str) -> dict[str, Any]:
    return {"t": t, "type": "fault", "action": action, "fault": kind, "node": node}


def test_a_fault_is_timed_from_the_start_of_its_injection_and_known_once_in_effect() -> None:
    history = [
        _fault(1000, "inject", "isolate", "redis-1"),
        _fault(3700, "applied", "isolate", "redis-1"),
        _fault(7000, "revert", "isolate", "redis-1"),
        _fault(8000, "inject", "upgrade", "redis-2"),  # a step: no applied mark
        _fault(9000, "inject", "kill", "redis-3"),
        _fault(9010, "applied", "kill", "redis-3"),
    ]
    spans = [(s.fault, s.node, s.start_ms, s.applied_ms, s.end_ms) for s in fault_spans(history)]
    assert spans == [
        ("isolate", "redis-1", 1000, 3700, 7000),
        ("upgrade", "redis-2", 8000, 8000, None),
        ("kill", "redis-3", 9000, 9010, None),
    ]


def test_lost_writes_are_placed_from_when_the_fault_took_effect_not_when_it_started() -> None:
    # An isolation whose rules took 2.7 s: the writes lost were acknowledged around the moment it took
    # effect, not "2.6 s after the fault" as a stamp at its start would have it read.
    history = [
        *steady(0, 5000),
        _fault(1000, "inject", "isolate", "redis-1"),
        _fault(3700, "applied", "isolate", "redis-1"),
        final(["k3600", "k3750"]),
    ]
    span = check(history, NAMES).lost_acked
    assert span is not None and (span.start_ms, span.end_ms) == (3600, 3750)
    assert (
        span.detail == "lost writes acknowledged from 0.10 s before to 0.05 s after the isolate of redis-1 took effect"
    )


def test_two_masters_are_counted_while_the_workload_ran_through_gaps_in_the_samples() -> None:
    # A sampling round can outlast 100 ms: the thawed zombie sampled at 6.05 s and 6.28 s is a master in
    # the bucket between. The old master restarted by the heal (after the workload) is not counted.
    history = [
        {"t": 0, "type": "drill", "event": "start"},
        *steady(0, 8000, "redis-2"),
        role(5950, "redis-1", "down"),
        role(6050, "redis-1", "master"),
        role(6280, "redis-1", "master"),
        role(6390, "redis-1", "replica"),
        *(role(t, "redis-2", "master") for t in range(6000, 9000, 100)),
        {"t": 8000, "type": "drill", "event": "stop"},
        role(8500, "redis-1", "master"),  # the heal restarted it; a replica again at once
        role(8600, "redis-1", "replica"),
        final([]),
    ]
    findings = check(history, NAMES)
    assert [(w.start_ms, w.end_ms, w.detail) for w in findings.two_masters] == [
        (6000.0, 6300.0, "masters: redis-1, redis-2")
    ]
    assert findings.summary()["two_masters_ms"] == 300.0


def test_a_server_fork_in_a_window_without_writes_is_named_as_its_cause() -> None:
    # An AOF rewrite forked (a 450 ms fork of a big dataset) while the workload ran: the gap it made is
    # the server's own, not the fault's; a fork outside any gap is listed all the same.
    history = [
        {"t": 0, "type": "drill", "event": "start"},
        *steady(0, 2000),
        *steady(2600, 5000),
        {"t": 2900, "type": "background", "node": "redis-1", "what": "AOF rewrite", "forks": 1, "fork_ms": 450.0},
        {"t": 4500, "type": "background", "node": "redis-2", "what": "RDB save", "forks": 1, "fork_ms": 3.0},
        {"t": 5000, "type": "drill", "event": "stop"},
        {"t": 5500, "type": "background", "node": "redis-1", "what": "AOF rewrite", "forks": 1, "fork_ms": 9.0},
        final([]),
    ]
    findings = check(history, NAMES)
    [gap] = findings.unavailable
    assert gap.detail == "no write acknowledged; AOF rewrite fork on redis-1 (450 ms) in the second before 2.90 s"
    assert [(s["node"], s["what"], s["during"]) for s in findings.stalls] == [
        ("redis-1", "AOF rewrite", [gap.start_ms, gap.end_ms]),
        ("redis-2", "RDB save", None),
    ], "the fork after the workload (the heal) is not counted"


def test_a_reproducers_evidence_lists_the_chosen_events_in_time_order(tmp_path: Path) -> None:
    from lab.drill.events import SentinelEvents
    from lab.repro.look import event_lines

    times = iter([12.5, 10.0, 11.0])
    events = SentinelEvents(make_spec(tmp_path), clock=lambda: next(times))  # (never entered: no thread runs)
    events._add("sentinel-2", "+switch-master", "m a 1 b 2")
    events._add("sentinel-1", "+sdown", "master m a 1")
    events._add("sentinel-3", "+new-epoch", "1")
    assert event_lines(events, ("+switch-master", "+sdown"), since=10.0) == [
        "  0.00 s  sentinel-1: +sdown master m a 1",
        "  2.50 s  sentinel-2: +switch-master m a 1 b 2",
    ]
    assert event_lines(events, ("+sdown", "+new-epoch", "+switch-master"), limit=2)[-1] == "... 1 more"
