"""Reproducers of what clients lose or wait for: a bare manual failover, a master back as a second master, a
stale replica promoted, a false failover, a client stuck on a frozen master, a coordinated failover refused."""

from __future__ import annotations

import time

from lab import faults, nodes
from lab.drill.events import SentinelEvents
from lab.drill.result import DrillResult
from lab.drill.scenarios import FAULT_AT, FREEZE_FOR, run_drill
from lab.failover import COORDINATED_SINCE
from lab.render import SENTINEL_AUTH_USER, SENTINEL_COORDINATED
from lab.repro.look import (
    agreed_master,
    count,
    drill_figures,
    event_lines,
    masters_named,
    role,
    wait_replicas_seen,
    within,
)
from lab.repro.verdict import Reproducer, Trial, Verdict
from lab.servers import Server
from lab.spec import LabSpec
from lab.topology import node_client

DRILL_S = 8.0
STALE_KEYS = 1000
RATE = 1000.0
#: A client that writes again this long after +switch-master did not follow it (it waited for the old master).
FOLLOW_S = 1.0  # writes a second across the drill's workers (a core stays free for the lab)


def _drill(spec: LabSpec, trial: Trial, scenario: str, **kw: object) -> DrillResult:
    where = trial.report_dir / scenario if trial.report_dir else None
    rate = None if "client" in kw else RATE
    return run_drill(spec, scenario, duration=DRILL_S, report_dir=where, rate=rate, **kw)  # type: ignore[arg-type]


def _findings_lines(result: DrillResult) -> list[str]:
    f, n = result.findings, drill_figures(result)
    lines = [
        f"{n['acknowledged']:,} writes acknowledged, {f.lost:,} of them lost"
        + (f" (e.g. {', '.join(f.lost_examples[:2])})" if f.lost_examples else ""),
        "failovers: " + ("; ".join(f"{x['old']} -> {x['new']}" for x in f.failovers) or "none"),
        f"longest unavailable {n['unavailable_s']:.2f} s; two masters for {n['two_masters_s']:.2f} s",
    ]
    if f.errors:
        lines.append("client errors: " + ", ".join(f"{k} {v}" for k, v in sorted(f.errors.items())))
    if result.report_dir:
        lines.append(f"report: {result.report_dir / 'report.html'}")
    return lines


def bare_failover(spec: LabSpec, trial: Trial) -> Verdict:
    """SENTINEL FAILOVER while clients write: the old master takes writes until it is told to follow the new one."""
    result = _drill(spec, trial, "failover-unsafe")
    lines = _findings_lines(result)
    if result.findings.lost:
        return Verdict(
            "reproduced",
            f"{result.findings.lost:,} acknowledged writes lost by a bare failover",
            lines,
            drill_figures(result),
        )
    return Verdict("not reproduced", "no acknowledged write lost", lines, drill_figures(result))


def restarted_old_master(spec: LabSpec, _trial: Trial) -> Verdict:
    """The master dies, Sentinel fails over, and the old master is started again from its own file (a pod or unit
    restarted as it was): it runs as a second master, taking writes, until Sentinel converts it."""
    old = spec.initial_master
    with SentinelEvents(spec) as events:
        fault = faults.inject(spec, "kill", old.name)
        killed = time.monotonic()
        switched, _ = within(20.0, lambda: events.failovers() or None)
        if switched is None:
            return Verdict("not reproduced", "no failover after the kill", [])
        faults.revert(spec, fault, rejoin=False)  # (its file as it was: no replicaof)
        restarted = time.monotonic()
        master_since = None
        acked = False
        while time.monotonic() - restarted < 20:
            said = role(spec, old)
            if said == "master":
                master_since = master_since or time.monotonic()
                if not acked:
                    try:
                        with node_client(spec, old, timeout=1) as conn:
                            acked = bool(conn.set("repro:second-master", "acked"))
                    except Exception:
                        pass
            elif said == "slave" and master_since is not None:
                break
            time.sleep(0.05)
        window = (time.monotonic() - master_since) if master_since else 0.0
        lines = event_lines(events, ("+switch-master", "+convert-to-slave"), since=killed)
    master = nodes.current_master(spec)
    with node_client(spec, master) as conn:
        kept = conn.get("repro:second-master")
    lines.append(
        f"a write {old.name} acknowledged as the second master: {'kept' if kept else 'lost'}"
        if acked
        else f"{old.name} took no write while it was a master"
    )
    if window > 0:
        return Verdict(
            "reproduced", f"{old.name} ran as a second master beside {master.name} for {window:.2f} s", lines
        )
    return Verdict("not reproduced", f"{old.name} came back as a replica", lines)


def stale_replica_promoted(spec: LabSpec, _trial: Trial) -> Verdict:
    """Both replicas die; the master takes writes; one replica comes back but cannot reach the master (it never
    syncs); the master dies. Sentinel should refuse the replica (its data is old), not promote it."""
    master, stale, other = spec.redis_nodes
    killed = [faults.inject(spec, "kill", n.name) for n in (stale, other)]
    with node_client(spec, master) as conn:
        pipe = conn.pipeline(transaction=False)
        for i in range(STALE_KEYS):
            pipe.set(f"repro:stale:{i}", i)
        pipe.execute()
    wait_replicas_seen(spec, {stale: True, other: True})
    faults.inject(spec, "isolate", stale.name, peers=[master.name])
    faults.revert(spec, killed[0], rejoin=False)
    wait_replicas_seen(spec, {stale: False, other: True})  # back for the Sentinels, never synced
    with SentinelEvents(spec) as events:
        started = time.monotonic()
        faults.inject(spec, "kill", master.name)
        switched, _ = within(20.0, lambda: events.failovers() or None)
        lines = event_lines(
            events,
            ("+sdown", "+odown", "-failover-abort-no-good-slave", "+selected-slave", "+switch-master"),
            since=started,
        )
    named = masters_named(spec)
    lines.append("the Sentinels name: " + ", ".join(f"{s} -> {m}" for s, m in named.items()))
    if switched is None or agreed_master(named, spec) != stale.name:
        return Verdict("not reproduced", "no replica good enough: the Sentinels did not promote the stale one", lines)
    kept = count(spec, stale, "repro:stale:*")
    lines.append(f"{stale.name} has {kept} of the {STALE_KEYS} keys the master acknowledged after it went down")
    if 0 <= kept < STALE_KEYS:
        return Verdict(
            "reproduced",
            f"{stale.name}, which never synced after its restart, was promoted: {STALE_KEYS - kept} acknowledged "
            "writes lost",
            lines,
            {"kept": kept, "acknowledged": STALE_KEYS},
        )
    return Verdict("not reproduced", f"{stale.name} was promoted, but it had synced the writes", lines)


def false_failover(spec: LabSpec, trial: Trial) -> Verdict:
    """A master that is alive but answers late (a latency spike above down-after) is failed over."""
    result = _drill(spec, trial, "latency-spike")
    lines = _findings_lines(result)
    if result.findings.failovers:
        return Verdict("reproduced", "a master that never died was failed over", lines, drill_figures(result))
    return Verdict("not reproduced", "the Sentinels waited the spike out", lines, drill_figures(result))


def ioredis_frozen_master(spec: LabSpec, trial: Trial) -> Verdict:
    """ioredis with its defaults keeps its commands queued on a frozen (SIGSTOP) master through the failover: no
    write is acknowledged until the old master thaws, and what it then takes is lost."""
    result = _drill(spec, trial, "freeze-master", client="ioredis", settings="defaults")
    f = result.findings
    lines = _findings_lines(result)
    if not f.failovers or not f.unavailable:
        return Verdict("not reproduced", "no failover, or no time without a write", lines, drill_figures(result))
    switched_ms = f.failovers[0]["t"]
    spanning = [w for w in f.unavailable if w.start_ms <= switched_ms <= w.end_ms]
    if not spanning:
        return Verdict("not reproduced", "ioredis was writing when the failover came", lines, drill_figures(result))
    window = spanning[0]
    lines.insert(
        0,
        f"frozen at {FAULT_AT:g} s for {FREEZE_FOR:g} s; +switch-master at {switched_ms / 1000:.2f} s; no write "
        f"acknowledged from {window.start_ms / 1000:.2f} s to {window.end_ms / 1000:.2f} s",
    )
    late = (window.end_ms - switched_ms) / 1000
    if late > FOLLOW_S:
        return Verdict(
            "reproduced",
            f"ioredis wrote again {late:.2f} s after the failover, when the frozen master thawed; {f.lost:,} "
            "acknowledged writes lost",
            lines,
            drill_figures(result),
        )
    return Verdict("not reproduced", f"ioredis followed the failover in {late:.2f} s", lines, drill_figures(result))


def _coordinated_builds(server: Server) -> str | None:
    if server.flavour == "valkey" and server.version[:2] >= COORDINATED_SINCE:
        return None
    return (
        f"{server.flavour} {'.'.join(map(str, server.version))} has no SENTINEL FAILOVER ... COORDINATED (Valkey 9.0+)"
    )


def coordinated_acl_stall(spec: LabSpec, _trial: Trial) -> Verdict:
    """A coordinated failover whose Sentinel user may not run FAILOVER and CLIENT PAUSE on the data nodes (an ACL
    written for older builds): it stalls at wait-promotion, NOPERM in the master's ACL LOG."""
    revoke = " ".join(f"-{c}" for c in SENTINEL_COORDINATED)
    for node in spec.redis_nodes:
        with node_client(spec, node) as conn:
            conn.execute_command("ACL", "SETUSER", SENTINEL_AUTH_USER, *revoke.split())
    with SentinelEvents(spec) as events:
        asked = time.monotonic()
        with node_client(spec, spec.sentinels[0]) as conn:
            conn.execute_command("SENTINEL", "FAILOVER", spec.master_name, "COORDINATED")
        switched, took = within(10.0, lambda: events.failovers() or None)
        lines = event_lines(
            events,
            ("+failover-state-wait-promotion", "-failover-abort-not-elected", "+failover-end", "+switch-master"),
            since=asked,
        )
    with node_client(spec, spec.initial_master) as conn:
        denied = [e for e in conn.acl_log() if e.get("username") == SENTINEL_AUTH_USER]
    lines += [
        f"ACL LOG on {spec.initial_master.name}: {e.get('reason')} {e.get('object')} (x{e.get('count')})"
        for e in denied[:3]
    ]
    if switched is None and denied:
        return Verdict("reproduced", "the coordinated failover stalled: no switch in 10 s, NOPERM on the master", lines)
    return Verdict("not reproduced", f"switched in {took:.1f} s" if switched else "stalled, but no NOPERM", lines)


REPRODUCERS = (
    Reproducer(
        "bare-failover-loses-writes",
        "https://github.com/redis/redis/issues/6062",
        "a manual SENTINEL FAILOVER loses acknowledged writes (the old master takes them until it follows)",
        bare_failover,
    ),
    Reproducer(
        "restarted-old-master-second-master",
        "https://github.com/bitnami/charts/issues/5543",
        "the old master, restarted from its own file after a failover, runs as a second master",
        restarted_old_master,
    ),
    Reproducer(
        "stale-replica-promoted",
        "https://github.com/redis/redis/issues/12574",
        "a replica that never synced after its restart is promoted, and the writes it missed are lost",
        stale_replica_promoted,
        needs="isolate",
    ),
    Reproducer(
        "low-down-after-false-failover",
        "https://github.com/redis/redis/issues/8607",
        "a master that only answers late (latency above down-after) is failed over",
        false_failover,
        needs="degrade",
    ),
    Reproducer(
        "ioredis-hangs-on-frozen-master",
        "https://github.com/redis/ioredis/issues/1314",
        "ioredis (defaults) waits for a frozen master through the failover instead of following it",
        ioredis_frozen_master,
        client="ioredis",
    ),
    Reproducer(
        "coordinated-failover-acl-stall",
        "https://github.com/valkey-io/valkey/issues/2779",
        "a COORDINATED failover stalls when Sentinel's ACL user may not run FAILOVER and CLIENT PAUSE",
        coordinated_acl_stall,
        applies=_coordinated_builds,
        builds="Valkey 9.0+",
        profile="production",
    ),
)
