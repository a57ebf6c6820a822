"""Reproducers of what Sentinels decide: split views, TILT, a master that reboots, a second failover."""

from __future__ import annotations

import threading
import time

from lab import control, faults, nodes
from lab.drill.events import SentinelEvents
from lab.failover import in_tilt, stall_into_tilt
from lab.repro.look import agreed_master, count, event_lines, masters_named, within
from lab.repro.verdict import Reproducer, Trial, Verdict
from lab.spec import LabSpec
from lab.topology import node_client

SPLIT_WATCH_S = 15.0
TILT_WATCH_S = 15.0  # TILT lasts 30 s; without it the lab fails over in about 2 s
REBOOT_KEYS = 1000


def split_sentinels(spec: LabSpec, _trial: Trial) -> Verdict:
    """sentinel-2 is (re)configured to monitor redis-2, a replica, as the master, as a Sentinel started with a
    different initial config would: all at config epoch 0, no hello carries a newer config, so no one gives way."""
    s1, s2 = spec.sentinels[0], spec.sentinels[1]
    other = spec.redis_nodes[1]
    with node_client(spec, s1) as conn:
        master = conn.sentinel_master(spec.master_name)
    with node_client(spec, s2) as conn:
        conn.execute_command("SENTINEL", "REMOVE", spec.master_name)
        conn.execute_command("SENTINEL", "MONITOR", spec.master_name, other.host, other.port, master["quorum"])
        for option in ("down-after-milliseconds", "failover-timeout", "parallel-syncs"):
            conn.execute_command("SENTINEL", "SET", spec.master_name, option, master[option])
        if spec.password:
            conn.execute_command("SENTINEL", "SET", spec.master_name, "auth-pass", spec.password)
    agreed, took = within(SPLIT_WATCH_S, lambda: agreed_master(masters_named(spec), spec), 0.5)
    named = masters_named(spec)
    seen = [f"after {took:.1f} s: " + ", ".join(f"{s} -> {m}" for s, m in named.items())]
    try:
        with node_client(spec, other) as conn:
            conn.set("repro:split", "1")
        seen.append(f"{other.name} took a write")
    except Exception as exc:
        seen.append(f"a client sent to {other.name} by sentinel-2 gets: {str(exc).splitlines()[0]}")
    masters = set(named.values()) & {n.name for n in spec.redis_nodes}
    if agreed is None and len(masters) > 1:
        return Verdict("reproduced", f"the Sentinels still name two masters after {SPLIT_WATCH_S:g} s", seen)
    if agreed is None:
        return Verdict("error", "a Sentinel did not answer which master it follows", seen)
    return Verdict("not reproduced", f"the Sentinels converged on {agreed} in {took:.1f} s", seen)


def tilt_blocks_failover(spec: LabSpec, _trial: Trial) -> Verdict:
    """Two Sentinels stalled into TILT (a stopped process, a slow disk), then the master dies: the one Sentinel
    left sees it down but cannot reach quorum (2) until TILT ends, 30 s later."""
    stalls = [threading.Thread(target=stall_into_tilt, args=(spec, s)) for s in spec.sentinels[:2]]
    for t in stalls:
        t.start()
    for t in stalls:
        t.join()
    tilted = [s.name for s in spec.sentinels[:2] if in_tilt(spec, s)]
    if len(tilted) < 2:
        return Verdict("error", f"only {', '.join(tilted) or 'no Sentinel'} entered TILT after the stall")
    with SentinelEvents(spec) as events:
        killed = time.monotonic()
        faults.inject(spec, "kill", spec.initial_master.name)
        switched, took = within(TILT_WATCH_S, lambda: events.named("+switch-master") or None)
        lines = [f"in TILT before the kill: {', '.join(tilted)}"]
        lines += event_lines(events, ("-tilt", "+sdown", "+odown", "+switch-master"), since=killed)
    if switched is None:
        return Verdict(
            "reproduced", f"no failover within {TILT_WATCH_S:g} s of the kill (two Sentinels in TILT for 30 s)", lines
        )
    return Verdict("not reproduced", f"failed over {took:.1f} s after the kill, two Sentinels in TILT", lines)


def master_reboot(spec: LabSpec, _trial: Trial) -> Verdict:
    """A master without persistence is killed and started again (a supervisor's restart) before down-after:
    Sentinel sees it back, does not fail over, and the replicas sync its empty data set."""
    master = spec.initial_master
    with node_client(spec, master) as conn:
        conn.config_set("appendonly", "no")
        conn.config_set("save", "")
        conn.execute_command("CONFIG", "REWRITE")  # (its file as a node without persistence would have it)
        pipe = conn.pipeline(transaction=False)
        for i in range(REBOOT_KEYS):
            pipe.set(f"repro:reboot:{i}", i)
        pipe.execute()
        conn.execute_command("WAIT", len(spec.redis_nodes) - 1, 2000)
    with node_client(spec, spec.sentinels[0]) as conn:
        down_after = int(conn.sentinel_master(spec.master_name)["down-after-milliseconds"])
    with SentinelEvents(spec) as events:
        fault = faults.inject(spec, "kill", master.name)
        killed = time.monotonic()
        faults.revert(spec, fault, rejoin=False)
        back = time.monotonic() - killed
        within(6.0, lambda: events.named("+switch-master") or None)
        switched = bool(events.named("+switch-master"))
        lines = event_lines(events, ("+reboot", "+sdown", "+odown", "+switch-master"), since=killed)
    lines.insert(0, f"{master.name} killed and started again in {back:.2f} s (down-after: {down_after} ms)")

    def agreed() -> dict[str, int] | None:  # (once the replicas have synced from the restarted master)
        counts = {n.name: count(spec, n, "repro:reboot:*") for n in spec.redis_nodes}
        return counts if len(set(counts.values())) == 1 and min(counts.values()) >= 0 else None

    kept = within(15.0, agreed, 0.5)[0]
    if kept is None:
        return Verdict("error", "the data nodes did not settle on one data set within 15 s", lines)
    lines.append("keys kept: " + ", ".join(f"{n} {k} of {REBOOT_KEYS}" for n, k in kept.items()))
    if switched:
        return Verdict("not reproduced", "the Sentinels failed the restarted master over", lines)
    if back * 1000 >= down_after:
        return Verdict("error", f"the restart took {back:.2f} s, past down-after: not the quick restart", lines)
    gone = REBOOT_KEYS - max(kept.values())
    if gone:
        return Verdict(
            "reproduced",
            f"{master.name} back in {back:.2f} s: no failover, {gone} keys gone from every node",
            lines,
            {"keys_lost": gone, "restart_s": round(back, 2)},
        )
    return Verdict("not reproduced", "the keys survived the restart", lines)


def double_failover(spec: LabSpec, _trial: Trial) -> Verdict:
    """Right after +switch-master, a Sentinel that had voted may start a second failover of the new master
    (its failover start time reset by the switch): three kill cycles, each watched 5 s past its switch."""
    seen: list[str] = []
    counts: list[int] = []
    attempts = 3
    for attempt in range(1, attempts + 1):
        with SentinelEvents(spec) as events:
            master = nodes.current_master(spec)
            fault = faults.inject(spec, "kill", master.name)
            first, _ = within(10.0, lambda: events.failovers() or None)
            time.sleep(5.0)
            switches = events.failovers()
            faults.revert(spec, fault)
        control.wait_healthy(spec, timeout=20)
        counts.append(len(switches))
        said = "; ".join(f"{o} -> {n}" for o, n in switches) if first is not None else "no failover within 10 s"
        seen.append(f"cycle {attempt}: killed {master.name}; {len(switches)} failover(s): {said}")
    doubled = sum(1 for c in counts if c > 1)
    figures: dict[str, float] = {"cycles": attempts, "with_a_second_failover": doubled}
    if doubled:
        return Verdict("reproduced", f"a second failover in {doubled} of {attempts} kill cycles", seen, figures)
    if any(c == 0 for c in counts):
        return Verdict("error", "a kill cycle had no failover at all", seen, figures)
    return Verdict("not reproduced", f"one failover per kill in {attempts} of {attempts} cycles", seen, figures)


REPRODUCERS = (
    Reproducer(
        "split-sentinels-different-masters",
        "https://github.com/redis/redis/issues/12271",
        "Sentinels started with different masters stay split: no one gives way at config epoch 0",
        split_sentinels,
    ),
    Reproducer(
        "tilt-blocks-failover",
        "https://github.com/redis/redis/issues/13185",
        "Sentinels in TILT after a stall do not fail over a dead master for 30 s",
        tilt_blocks_failover,
    ),
    Reproducer(
        "master-reboot-no-failover",
        "https://github.com/redis/redis/issues/1297",
        "a master restarted within down-after is not failed over; without persistence it empties its replicas",
        master_reboot,
    ),
    Reproducer(
        "double-failover-after-switch-master",
        "https://github.com/redis/redis/pull/2370",
        "a second failover of the new master right after +switch-master",
        double_failover,
    ),
)
