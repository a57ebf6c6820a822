"""What reproducers look at while they run: each Sentinel's master, a node's role, a wait that reports."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from lab.drill.checker import WRITES
from lab.drill.events import SentinelEvents, said
from lab.drill.result import DrillResult
from lab.errors import WaitTimeout
from lab.spec import LabSpec, Node
from lab.topology import node_client, observe_sentinel
from lab.waits import wait_for

T = TypeVar("T")


def agreed_master(named: dict[str, str], spec: LabSpec) -> str | None:
    """The data node every Sentinel names, or None (they differ, or one did not answer)."""
    seen = set(named.values())
    return seen.pop() if len(seen) == 1 and seen <= {n.name for n in spec.redis_nodes} else None


def masters_named(spec: LabSpec) -> dict[str, str]:
    """What each Sentinel names as the master (a node's name, or why it could not say)."""
    by_address = {(n.host, n.port): n.name for n in spec.redis_nodes}
    named = {}
    for sentinel in spec.sentinels:
        try:
            with node_client(spec, sentinel, timeout=2) as conn:
                addr = conn.sentinel_get_master_addr_by_name(spec.master_name)
            named[sentinel.name] = by_address.get((addr[0], int(addr[1])), f"{addr[0]}:{addr[1]}") if addr else "none"
        except Exception as exc:
            named[sentinel.name] = f"no answer ({type(exc).__name__})"
    return named


def role(spec: LabSpec, node: Node) -> str:
    """``master``, ``slave``, or ``down`` when the node does not answer."""
    try:
        with node_client(spec, node, timeout=1) as conn:
            return str(conn.info("replication")["role"])
    except Exception:
        return "down"


def count(spec: LabSpec, node: Node, pattern: str) -> int:
    """Keys matching ``pattern`` on a node (-1: it does not answer)."""
    try:
        with node_client(spec, node, timeout=2) as conn:
            return len(conn.keys(pattern))
    except Exception:
        return -1


def within(seconds: float, probe: Callable[[], T | None], interval: float = 0.1) -> tuple[T | None, float]:
    """Poll ``probe`` until it returns something or ``seconds`` pass: (what it returned or None, seconds taken).
    A reproducer's observation, not an error: running out of time is an answer too."""
    started = time.monotonic()

    def probed() -> tuple[bool, T | None]:
        got = probe()
        return got is not None, got

    try:
        got = wait_for(probed, what="a reproducer's observation", timeout=seconds, interval=interval)
    except WaitTimeout:
        got = None
    return got, time.monotonic() - started


def replica_flags(spec: LabSpec, replicas: list[Node]) -> dict[str, dict[str, str]]:
    """What each Sentinel flags each replica with, by replica then Sentinel ("slave", "s_down,slave", ...;
    "unknown" when it does not list it, "no answer" when the Sentinel does not answer): one look per Sentinel."""
    seen: dict[str, dict[str, str]] = {r.name: {} for r in replicas}
    for sentinel in spec.sentinels:
        view = observe_sentinel(spec, sentinel, timeout=1.0)
        for r in replicas:
            flags = view.replica_flags.get(f"{r.host}:{r.port}", "unknown")
            seen[r.name][sentinel.name] = flags if view.reachable else "no answer"
    return seen


def wait_replicas_seen(spec: LabSpec, replicas: dict[Node, bool], timeout: float = 15.0) -> None:
    """Until every Sentinel flags each replica subjectively down (True) or up (False); WaitTimeout names what
    they said last."""

    def seen() -> tuple[bool, dict[str, dict[str, str]]]:
        flags = replica_flags(spec, list(replicas))
        ok = all(
            f not in ("unknown", "no answer") and ("s_down" in f.split(",")) == down
            for r, down in replicas.items()
            for f in flags[r.name].values()
        )
        return ok, flags

    states = ", ".join(f"{r.name} {'down' if down else 'up'}" for r, down in replicas.items())
    wait_for(seen, what=f"every Sentinel to see {states}", timeout=timeout, interval=0.1)


def event_lines(events: SentinelEvents, channels: tuple[str, ...], since: float = 0.0, limit: int = 8) -> list[str]:
    """The Sentinels' events on these channels, as evidence lines (seconds on the watcher's clock from ``since``)."""
    lines = [
        f"{r['t'] - since:6.2f} s  {r['sentinel']}: {r['event']} {r['data']}" for r in said(events.records(), channels)
    ]
    return lines[:limit] + ([f"... {len(lines) - limit} more"] if len(lines) > limit else [])


def two_masters_s(result: DrillResult) -> float:
    return round(sum(w.ms for w in result.findings.two_masters) / 1000, 2)


def drill_figures(result: DrillResult) -> dict[str, float]:
    """A drill's numbers for a verdict: acknowledged writes and those lost, its longest unavailability, two masters."""
    f = result.findings
    return {
        "lost": f.lost,
        "acknowledged": sum(v.get("ok", 0) for k, v in f.operations.items() if k in WRITES),
        "unavailable_s": round(f.unavailable_longest_ms / 1000, 2),
        "two_masters_s": two_masters_s(result),
        "failovers": len(f.failovers),
    }
