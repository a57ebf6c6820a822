"""The consistency checks of the register and list workloads, over a drill's history records: turn
the records into the operations lab.drill.linearizable and lab.drill.listappend check, and their
verdicts into the report's ``consistency`` section."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lab.drill import linearizable, listappend
from lab.drill.history import Record

EXAMPLES = 5


def _completed(records: list[Record]) -> Iterator[tuple[Record, Record]]:
    """(invoke, completion) pairs in the order of the invocations: a worker sends one operation at a
    time, so its next completion is its last invocation's."""
    pending: dict[Any, Record] = {}
    pairs: list[tuple[Record, Record]] = []
    for r in records:
        if r["type"] == "invoke":
            pending[r["process"]] = r
        elif r["type"] in ("ok", "fail", "info") and r["process"] in pending:
            pairs.append((pending.pop(r["process"]), r))
    pairs.sort(key=lambda pair: pair[0]["t"])
    yield from pairs


def register_ops(records: list[Record]) -> list[linearizable.Op]:
    """The register workload's operations (without those that failed), then one read per key of what
    the converged master held after the heal."""
    ops = []
    for invoke, done in _completed(records):
        if done["type"] == "fail":
            continue
        complete = done["t"] if done["type"] == "ok" else None
        f, value = invoke["f"], invoke["value"]
        arg: Any = tuple(value) if f == "cas" else value
        ret = done["value"] if f == "read" else done.get("swapped")
        ops.append(linearizable.Op(invoke["process"], invoke["key"], f, arg, ret, invoke["t"], complete))
    final = next((r for r in reversed(records) if r["type"] == "final"), None)
    if final is not None:
        for key, value in final.get("registers", {}).items():
            ops.append(linearizable.Op(-1, key, "read", None, value, final["t"], final["t"]))
    return ops


def check_registers(records: list[Record]) -> dict[str, Any]:
    verdict = linearizable.check(register_ops(records))
    return {
        "checker": "linearizable",
        "valid": verdict.valid,
        "keys": verdict.keys,
        "operations": verdict.operations,
        "anomalies": len(verdict.violations),
        "violations": [v.describe() for v in verdict.violations[:EXAMPLES]],
        "unknown": verdict.unknown,
    }


def list_history(records: list[Record]) -> tuple[list[listappend.Append], list[listappend.Read]]:
    """The list workload's appends and reads, and the final read of every list after the heal."""
    appends, reads = [], []
    for invoke, done in _completed(records):
        if invoke["f"] == "rpush":
            ok = {"ok": True, "fail": False}.get(done["type"])
            complete = done["t"] if done["type"] != "info" else None
            appends.append(
                listappend.Append(invoke["process"], invoke["key"], int(invoke["value"]), invoke["t"], complete, ok)
            )
        elif invoke["f"] == "read" and done["type"] == "ok":
            values = tuple(int(v) for v in done["value"] or ())
            reads.append(
                listappend.Read(
                    invoke["process"], invoke["key"], values, invoke["t"], done["t"], bool(done.get("replica"))
                )
            )
    final = next((r for r in reversed(records) if r["type"] == "final"), None)
    if final is not None:
        for key, values in final.get("lists", {}).items():
            reads.append(listappend.Read(-1, key, tuple(int(v) for v in values), final["t"], final["t"], final=True))
    return appends, reads


def check_lists(records: list[Record]) -> dict[str, Any]:
    result = listappend.check(*list_history(records))
    return {
        "checker": "list-append",
        "valid": result.valid,
        "keys": result.keys,
        "operations": result.appends + result.reads,
        "anomalies": sum(result.counts.values()) + sum(result.master_reads.values()),
        "counts": result.counts,
        "master_reads": result.master_reads,
        "replica_reads": result.replica_reads,
        "examples": dict(result.examples),
    }
