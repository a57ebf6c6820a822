"""A drill's history in the form Jepsen's checkers read (``lab drill --export jepsen``): one map per
operation, ``:type`` ``:invoke``/``:ok``/``:fail``/``:info``, ``:f``, ``:value``, ``:process``,
``:time`` (nanoseconds) and ``:index``, as EDN (``history.edn``) and JSON (``history.jepsen.json``).

- register and set workloads: ``:read``/``:write``/``:cas`` with ``[key value]`` tuples, as
  ``jepsen.independent`` writes them (Knossos's cas-register model per key);
- list workload: Elle's list-append transactions, ``:f :txn`` with ``[[:append k v]]`` and
  ``[[:r k [v ...]]]``;
- counter workload: ``:add`` of 1 per INCR, ``[key 1]``;
- the faults as ``:nemesis`` ``:info`` operations; the read after the heal as ``:final`` process reads.

:func:`read_jepsen` reads such a history back (or one of Knossos's own: with no ``:time``, the order in
the file is the order in time) into lab.drill.linearizable operations.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import edn_format
from edn_format import Keyword

from lab.drill.linearizable import Op
from lab.drill.spool import Record

K = Keyword
FINAL = "final"


def jepsen_ops(records: Iterable[Record], workload: str) -> list[dict[str, Any]]:
    """The history as Jepsen operations (string keys; :func:`to_edn` makes keywords of them)."""
    ops: list[dict[str, Any]] = []
    for r in sorted(records, key=lambda r: r["t"]):
        kind = r["type"]
        if kind in ("invoke", "ok", "fail", "info") and r.get("f"):
            f, value = _operation(r, workload)
            op = {"type": _type(r), "f": f, "value": value, "process": r["process"]}
        elif kind == "fault" and r["action"] in ("inject", "revert"):
            op = {"type": "info", "f": r["fault"] if r["action"] == "inject" else "heal", "value": r["node"]}
            op["process"] = "nemesis"
        elif kind == "final":
            ops.extend(_final(r, workload, len(ops)))
            continue
        else:
            continue
        op["time"] = int(r["t"] * 1_000_000)
        op["index"] = len(ops)
        ops.append(op)
    return ops


def _operation(r: Record, workload: str) -> tuple[str, Any]:
    f, key, value, done = r["f"], r["key"], r.get("value"), r["type"] != "invoke"
    if f == "rpush":
        return "txn", [["append", key, value]]
    if f == "read" and workload == "list":
        return "txn", [["r", key, value if done and r["type"] == "ok" else None]]
    if f == "incr":
        return "add", [key, 1]
    if f == "read":
        return "read", [key, value if done and r["type"] == "ok" else None]
    if f == "cas":
        return "cas", [key, list(value or ())]
    return f, [key, value]


def _type(r: Record) -> str:
    """Jepsen's cas that did not swap is a ``:fail`` (it did not take effect)."""
    return "fail" if r["type"] == "ok" and r.get("f") == "cas" and r.get("swapped") is False else r["type"]


def _final(r: Record, workload: str, index: int) -> list[dict[str, Any]]:
    """The read of what the healed lab kept, as ``:final`` reads."""
    t = int(r["t"] * 1_000_000)
    reads: list[tuple[str, Any]] = []
    for key, value in r.get("registers", {}).items():
        reads.append(("read", [key, value]))
    for key, values in r.get("lists", {}).items():
        reads.append(("txn", [["r", key, values]]))
    for key, value in r.get("counters", {}).items():
        reads.append(("read", [key, value]))
    ops: list[dict[str, Any]] = []
    for f, value in reads:
        invoke = [["r", value[0][1], None]] if f == "txn" else [value[0], None]
        for kind, v in (("invoke", invoke), ("ok", value)):
            ops.append({"type": kind, "f": f, "value": v, "process": FINAL, "time": t, "index": index + len(ops)})
    return ops


def _edn(value: Any, keywords: bool = False) -> Any:
    """Python -> edn_format values: map keys and the values of :type, :f and :process as keywords."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            as_keyword = k in ("type", "f") or (k == "process" and isinstance(v, str))
            out[K(k)] = K(v) if as_keyword and isinstance(v, str) else _edn(v)
        return out
    if isinstance(value, list | tuple):
        items = [_edn(v) for v in value]
        if items and isinstance(value[0], str) and value[0] in ("append", "r") and len(value) == 3:
            items[0] = K(value[0])  # a micro-op of a list-append transaction: [:append k v]
        return items
    return value


def to_edn(ops: list[dict[str, Any]]) -> str:
    """A vector of maps, one per line (Knossos's and elle-cli's input)."""
    lines = [edn_format.dumps(_edn(op)) for op in ops]
    return "[" + "\n ".join(lines) + "]\n"


def write_export(records: Iterable[Record], workload: str, directory: Path) -> list[Path]:
    ops = jepsen_ops(records, workload)
    edn, js = directory / "history.edn", directory / "history.jepsen.json"
    edn.write_text(to_edn(ops))
    js.write_text(json.dumps(ops, separators=(",", ":")) + "\n")
    return [edn, js]


def _plain(value: Any) -> Any:
    """edn_format values -> Python (keywords as their names, vectors as lists)."""
    if isinstance(value, Keyword):
        return value.name
    if isinstance(value, Mapping):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value


def read_jepsen(text: str, independent: bool, nil_is_unknown: bool = False, key: str = "k") -> list[Op]:
    """A Jepsen register history (EDN) as operations for lab.drill.linearizable.check: invokes paired
    with their completions by process; ``:fail`` left out (a cas that did not swap, a write that did not
    happen); an ``:info`` or a missing completion is an operation whose outcome is unknown.
    ``independent``: values are ``[key value]`` tuples (``jepsen.independent``, and this module's
    export); else every operation is on the one register ``key`` (Knossos's own histories).
    ``nil_is_unknown``: a read of nil says nothing (Knossos's cas-register model: it matches any
    value); else it is a read of no key (this module's export). Times are ``:time`` when present,
    else the operation's place in the file."""
    parsed = [_plain(op) for op in edn_format.loads(text)]
    pending: dict[Any, tuple[float, dict[str, Any]]] = {}
    ops: list[Op] = []
    for place, op in enumerate(parsed):
        if op.get("process") == "nemesis" or op.get("f") not in ("read", "write", "cas"):
            continue
        t = float(op.get("time", place))
        if op["type"] == "invoke":
            pending[op["process"]] = (t, op)
        elif op["process"] in pending:
            started, call = pending.pop(op["process"])
            unknown_read = call["f"] == "read" and nil_is_unknown and _keyed(op["value"], independent, key)[1] is None
            if op["type"] != "fail" and not unknown_read:
                ops.append(_op(call, op["value"], started, t if op["type"] == "ok" else None, independent, key))
    for started, call in pending.values():  # never completed: crashed, its outcome unknown
        if call["f"] != "read":
            ops.append(_op(call, call["value"], started, None, independent, key))
    return sorted(ops, key=lambda o: o.invoke)


def _op(call: dict[str, Any], returned: Any, started: float, complete: float | None, independent: bool, key: str) -> Op:
    k, arg = _keyed(call["value"], independent, key)
    _, value = _keyed(returned, independent, key)
    process = call["process"] if isinstance(call["process"], int) else -1
    if call["f"] == "read":
        return Op(process, k, "read", None, value, started, complete)
    if call["f"] == "write":
        return Op(process, k, "write", arg, None, started, complete)
    return Op(process, k, "cas", tuple(arg), True if complete is not None else None, started, complete)


def _keyed(value: Any, independent: bool, key: str) -> tuple[str, Any]:
    if independent and isinstance(value, list) and len(value) == 2:
        return str(value[0]), value[1]
    return key, value
