"""Histories other checkers read: Knossos's published register histories checked by lab's checker with
Knossos's verdicts, and a drill's history exported as Jepsen EDN and read back with the same verdict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lab.drill.consistency import check_registers
from lab.drill.export import jepsen_ops, read_jepsen, to_edn
from lab.drill.linearizable import check

KNOSSOS = Path(__file__).resolve().parent.parent / "data" / "knossos"


@pytest.mark.parametrize("path", sorted(KNOSSOS.rglob("*.edn")), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_knossos_published_histories_get_knossos_verdicts(path: Path) -> None:
    ops = read_jepsen(path.read_text(), independent=False, nil_is_unknown=True)
    verdict = check(ops, initial=0)  # Knossos's tests use (cas-register 0)
    assert verdict.valid is (path.parent.name == "good"), [v.describe() for v in verdict.violations]


def test_the_minimal_rethinkdb_failure_is_explained() -> None:
    [violation] = check(
        read_jepsen((KNOSSOS / "bad" / "rethink-fail-minimal.edn").read_text(), False, True), 0
    ).violations
    # "Value is 0, then we concurrently write 4, read 3": could have been 0 or 4 but not 3.
    assert violation.op.ret == 3 and violation.possible == [0] and violation.in_flight == [4]
    assert violation.describe().endswith("could only hold 0 (or a value in flight: 4)")


def _record(t: float, kind: str, process: int, f: str, key: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {"t": t, "type": kind, "process": process, "f": f, "key": key, "value": value, **extra}


def _register_history(stale: bool) -> list[dict[str, Any]]:
    return [
        {"t": 0.0, "type": "drill", "event": "start", "scenario": "x"},
        _record(1.0, "invoke", 0, "write", "r:0", "0-1"),
        _record(2.0, "ok", 0, "write", "r:0", "0-1", node="redis-1"),
        _record(3.0, "invoke", 1, "cas", "r:0", ["0-1", "1-1"]),
        _record(4.0, "ok", 1, "cas", "r:0", ["0-1", "1-1"], swapped=True, node="redis-1"),
        _record(5.0, "invoke", 1, "cas", "r:0", ["0-1", "1-2"]),
        _record(6.0, "ok", 1, "cas", "r:0", ["0-1", "1-2"], swapped=False, node="redis-1"),
        _record(7.0, "invoke", 2, "read", "r:1", None),
        _record(8.0, "ok", 2, "read", "r:1", None, node="redis-1"),
        _record(9.0, "invoke", 2, "read", "r:0", None),
        _record(10.0, "ok", 2, "read", "r:0", "0-1" if stale else "1-1", node="redis-2"),
        {"t": 11.0, "type": "fault", "action": "inject", "fault": "kill", "node": "redis-1"},
        {"t": 20.0, "type": "final", "node": "redis-2", "registers": {"r:0": "1-1", "r:1": None}},
    ]


@pytest.mark.parametrize("stale", [False, True], ids=["linearizable", "stale read"])
def test_an_exported_history_reads_back_with_the_same_verdict(stale: bool) -> None:
    records = _register_history(stale)
    text = to_edn(jepsen_ops(records, "register"))
    assert text.startswith("[{") and ":type :invoke" in text and ':value ["r:0" ["0-1" "1-1"]]' in text
    assert ":process :nemesis" in text and ":f :kill" in text and ":process :final" in text
    # A cas that did not swap did not take effect: Jepsen writes it as a :fail.
    assert text.count(":type :fail") == 1
    ours = check_registers(records)
    theirs = check(read_jepsen(text, independent=True))
    assert theirs.valid is ours["valid"] is (not stale)
    assert theirs.keys == ours["keys"] == 2


def test_a_list_history_exports_as_elle_list_append() -> None:
    records = [
        _record(1.0, "invoke", 0, "rpush", "l:0", 1),
        _record(2.0, "ok", 0, "rpush", "l:0", 1, node="redis-1"),
        _record(3.0, "invoke", 1, "read", "l:0", None),
        _record(4.0, "ok", 1, "read", "l:0", [1], node="redis-2", replica=True),
        {"t": 9.0, "type": "final", "node": "redis-1", "lists": {"l:0": [1]}},
    ]
    ops = jepsen_ops(records, "list")
    assert [(o["type"], o["f"], o["value"]) for o in ops] == [
        ("invoke", "txn", [["append", "l:0", 1]]),
        ("ok", "txn", [["append", "l:0", 1]]),
        ("invoke", "txn", [["r", "l:0", None]]),
        ("ok", "txn", [["r", "l:0", [1]]]),
        ("invoke", "txn", [["r", "l:0", None]]),
        ("ok", "txn", [["r", "l:0", [1]]]),
    ]
    text = to_edn(ops)
    assert '[[:append "l:0" 1]]' in text and '[[:r "l:0" [1]]]' in text
    assert [o["index"] for o in ops] == list(range(len(ops))) and ops[-1]["process"] == "final"
