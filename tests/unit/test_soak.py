"""The soak's pure parts: the seeded schedule, its options, the spooled history and the one-pass check."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from lab.drill import nemesis
from lab.drill.soakcheck import check_soak, register_ops_stream
from lab.drill.spool import Spool, read_spool
from lab.errors import UsageError


def test_the_same_seed_replays_the_same_schedule() -> None:
    faults = ("kill-master", "freeze-master", "failover")
    first = nemesis.plan(42, faults, (5.0, 10.0), 600)
    assert first == nemesis.plan(42, faults, (5.0, 10.0), 600)
    assert first != nemesis.plan(43, faults, (5.0, 10.0), 600)
    assert 60 <= len(first) <= 120 and {s.fault for s in first} == set(faults)
    assert all(5.0 <= s.quiet_s <= 10.0 for s in first) and [s.index for s in first] == list(range(1, len(first) + 1))
    # A longer plan starts with the shorter one: the schedule does not depend on the duration.
    assert nemesis.plan(42, faults, (5.0, 10.0), 1200)[: len(first)] == first


@pytest.mark.parametrize(
    ("parse", "text", "says"),
    [
        (nemesis.parse_faults, "kill-master,teleport", "unknown soak fault teleport"),
        (nemesis.parse_faults, " , ", "at least one fault"),
        (nemesis.parse_faults, "rolling-upgrade", "unknown soak fault rolling-upgrade"),
        (nemesis.parse_interval, "40-20", "LO <= HI"),
        (nemesis.parse_interval, "0.5", "1 <= LO"),
        (nemesis.parse_interval, "nan", "1 <= LO"),
        (nemesis.parse_interval, "20-inf", "<= 3600"),
        (nemesis.parse_interval, "soon", "not LO-HI"),
        (nemesis.parse_seed, "x", "not a whole number"),
        (nemesis.parse_seed, "-1", "out of range"),
        (nemesis.parse_seed, str(2**64), "out of range"),
    ],
)
def test_bad_soak_options_are_one_line(parse: Any, text: str, says: str) -> None:
    with pytest.raises(UsageError, match=says) as caught:
        parse(text)
    assert "\n" not in str(caught.value)


def test_options_that_parse() -> None:
    assert nemesis.parse_interval("20-40") == (20.0, 40.0) and nemesis.parse_interval("30") == (30.0, 30.0)
    assert nemesis.parse_faults("kill-master, failover,kill-master") == ("kill-master", "failover")
    assert nemesis.parse_seed("7") == 7


def test_the_spool_writes_in_time_order_whatever_order_records_arrive(tmp_path: Path) -> None:
    now = [0.0]
    spool = Spool(tmp_path / "h.jsonl.gz", lambda: now[0])
    worker = spool.source()
    spool.add({"t": 30.0, "type": "role"})
    worker.append((10.0, "invoke", 0, "incr", "k", None, {}))
    worker.append((20.0, "ok", 0, "incr", "k", 1, {"node": "redis-1"}))
    spool.add({"t": 5.0, "type": "drill", "event": "start"})
    spool.flush(before=25.0)  # 30 is held back for a later round
    assert [r["t"] for r in read_spool(spool.path)] == [5.0, 10.0, 20.0]
    spool.add({"t": 26.0, "type": "fault"})
    spool.close()
    records = list(read_spool(spool.path))
    assert [r["t"] for r in records] == [5.0, 10.0, 20.0, 26.0, 30.0]
    assert records[2] == {"t": 20.0, "type": "ok", "process": 0, "f": "incr", "key": "k", "value": 1, "node": "redis-1"}


def test_a_history_cut_short_reads_up_to_the_cut(tmp_path: Path) -> None:
    whole = tmp_path / "whole.gz"
    with gzip.open(whole, "wt") as handle:
        for t in range(1000):
            handle.write(json.dumps({"t": t, "type": "ok", "process": 0}) + "\n")
    cut = tmp_path / "cut.gz"
    cut.write_bytes(whole.read_bytes()[:-200])
    records = list(read_spool(cut))
    assert 0 < len(records) < 1000 and [r["t"] for r in records] == list(range(len(records)))


def test_a_history_of_two_gzip_members_reads_whole_and_a_damaged_one_up_to_the_damage(tmp_path: Path) -> None:
    def member(first: int) -> bytes:
        lines = "".join(
            json.dumps({"t": t, "type": "ok"}, separators=(",", ":")) + "\n" for t in range(first, first + 500)
        )
        return gzip.compress(lines.encode())

    two = tmp_path / "two.gz"
    two.write_bytes(member(0) + member(500))
    assert [r["t"] for r in read_spool(two)] == list(range(1000))
    damaged = tmp_path / "damaged.gz"
    damaged.write_bytes(member(0) + b"not gzip at all" * 10)
    assert [r["t"] for r in read_spool(damaged)] == list(range(500))
    assert [r["t"] for r in read_spool(two, skip=("ok",))] == []


def test_a_full_disk_stops_the_spool_with_one_line() -> None:
    spool = Spool(Path("/dev/full"), lambda: 0.0)  # every write: ENOSPC
    spool.add({"t": 1.0, "type": "drill"})
    spool.close()
    assert spool.error is not None and "could not be written" in spool.error and "\n" not in spool.error


def _op(t: float, kind: str, process: int, value: Any = None, f: str = "incr", **extra: Any) -> dict[str, Any]:
    return {"t": t, "type": kind, "process": process, "f": f, "key": f"c{process}", "value": value, **extra}


def test_the_check_finds_each_steps_losses_gaps_and_failovers() -> None:
    records = [
        {"t": 0.0, "type": "drill", "event": "start"},
        *(_op(10.0 * i, "ok", 0, i) for i in range(1, 50)),  # steady: counter 1..49
        {"t": 500.0, "type": "step", "event": "start", "step": "1 kill-master"},
        {"t": 500.0, "type": "fault", "action": "inject", "fault": "kill", "node": "redis-1"},
        _op(510.0, "fail", 0, error="refused"),
        {"t": 1500.0, "type": "sentinel", "sentinel": "s1", "event": "+switch-master", "data": "m a 1 b 2"},
        {"t": 1501.0, "type": "sentinel", "sentinel": "s2", "event": "+switch-master", "data": "m a 1 b 2"},
        _op(2000.0, "ok", 0, 46),  # the new master had 45: 4 acknowledged increments lost (46..49)
        *(_op(2000.0 + 10 * i, "ok", 0, 46 + i) for i in range(1, 20)),
        {"t": 2500.0, "type": "step", "event": "end", "step": "1 kill-master", "converged_ms": 700.0},
        {"t": 3000.0, "type": "final", "counters": {"c0": 65}},
    ]
    findings = check_soak(records)
    [step] = findings.steps
    assert (step.index, step.fault, step.nodes, step.converged_ms) == (1, "kill-master", ["redis-1"], 700.0)
    assert (step.lost, step.failovers, step.new_master) == (4, 1, "b:2")
    assert step.unavailable_ms == pytest.approx(2000.0 - 490.0)
    assert step.zoom[0] == [0.0, 9.0, 0.0]  # the panel starts up to 2 s before the fault
    s = findings.summary()
    assert (s["lost"], s["failovers"], s["steps"], s["ok"], s["failed"]) == (4, 1, 1, 69, 1)
    assert findings.per_second[0][:3] == [0, 49, 1] and findings.lost_at_end == 0


def test_a_step_lists_the_sentinels_setbacks_in_it() -> None:
    def said(t: float, sentinel: str, event: str) -> dict[str, Any]:
        return {"t": t, "type": "sentinel", "sentinel": sentinel, "event": event, "data": "master m a 1"}

    records = [
        said(100.0, "sentinel-3", "+tilt"),  # between steps: no step's
        {"t": 500.0, "type": "step", "event": "start", "step": "1 freeze-sentinel-kill-master"},
        said(2600.0, "sentinel-1", "+tilt"),
        said(2700.0, "sentinel-2", "+sdown"),  # a decision, not a setback
        said(9000.0, "sentinel-2", "-failover-abort-not-elected"),
        {"t": 9500.0, "type": "step", "event": "end", "step": "1 freeze-sentinel-kill-master"},
        {"t": 9600.0, "type": "step", "event": "start", "step": "2 kill-master"},
        {"t": 9900.0, "type": "step", "event": "end", "step": "2 kill-master"},
    ]
    first, second = check_soak(records).steps
    assert first.setbacks == ["sentinel-1 +tilt", "sentinel-2 -failover-abort-not-elected"] and second.setbacks == []


def test_the_read_after_the_last_heal_counts_what_no_incr_showed() -> None:
    findings = check_soak(
        [_op(10.0, "ok", 0, 1), _op(20.0, "ok", 0, 2), {"t": 30.0, "type": "final", "counters": {"c0": 1}}]
    )
    assert findings.lost == findings.lost_at_end == 1


def test_register_operations_stream_in_call_order() -> None:
    records = [
        _op(1.0, "invoke", 0, "a", f="write", key="r"),
        _op(2.0, "invoke", 1, None, f="read"),
        _op(3.0, "ok", 1, None, f="read"),
        _op(4.0, "info", 0, "a", f="write", error="timeout"),
        _op(5.0, "invoke", 1, ["a", "b"], f="cas"),
        _op(6.0, "ok", 1, ["a", "b"], f="cas", swapped=True),
        _op(7.0, "invoke", 0, "c", f="write"),  # never completed
        {"t": 9.0, "type": "final", "registers": {"r": "b"}},
    ]
    ops = list(register_ops_stream(records))
    assert [(o.f, o.invoke, o.complete) for o in ops] == [
        ("write", 1.0, None),
        ("read", 2.0, 3.0),
        ("cas", 5.0, 6.0),
        ("write", 7.0, None),
        ("read", 9.0, 9.0),
    ]
    assert ops[2].arg == ("a", "b") and ops[2].ret is True and ops[-1].process == -1


def test_a_soak_takes_every_drill_of_one_fault_that_a_heal_undoes() -> None:
    """A new scenario gets a decision: a soak step, or one of the named exceptions (docs/reports.md says which)."""
    from lab.drill.scenarios import SCENARIOS

    never = {"rolling-upgrade", "restart-all", "isolate-master-guarded"}  # every node moved or restarted; config set
    assert set(nemesis.SOAK_FAULTS) == set(SCENARIOS) - never
