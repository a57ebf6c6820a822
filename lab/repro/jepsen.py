"""Jepsen's 2013 Redis experiment (Kingsbury, "Call me maybe: Redis"): a partition puts the master and one
Sentinel in a minority; clients on both sides write; the share of acknowledged writes lost, unguarded and with
min-replicas-to-write guarding the minority, beside the paper's 56%.

What differs: the paper ran five hosts, each a Redis and a Sentinel (n1 the master; {n1, n2} | {n3, n4, n5}); the
lab has three data nodes and three Sentinels on loopback, so the minority is the master and sentinel-1 and the
majority two data nodes and two Sentinels (enough for quorum 2, as the paper's three of five were). The paper's
clients added to a set through Carmine; here four writers add unique keys (lab.drill, the ``set`` workload), two
connected to the master's address as an application configured with a host is (the minority's clients) and two
through Sentinel. The clients run outside the partition and reach both sides (the paper's ran on the hosts and were
cut off with them), so the Sentinel-aware ones stay on the old master, which still answers, until it is demoted:
more of the run's writes go to the minority than in the paper. The share lost also depends on how long the
partition lasts within the run: 8 s of 12 here."""

from __future__ import annotations

from lab.drill.history import Workload
from lab.drill.scenarios import FAULT_AT, Run, Scenario, run_drill
from lab.repro.look import drill_figures
from lab.repro.verdict import Reproducer, Trial, Verdict
from lab.spec import LabSpec

PAPER_LOST = 0.56  # "Redis threw away 56% of acknowledged writes" (aphyr.com/posts/283-jepsen-redis)
PARTITION_S = 8.0
RUN_S = 12.0
RATE = 1000.0
GUARD = {"min_replicas_to_write": 1, "min_replicas_max_lag": 1}


def _minority_partition(d: Run) -> None:
    """The master and sentinel-1 cut off from the other data nodes and Sentinels (clients reach every node)."""
    d.at(FAULT_AT)
    master, sentinel = d.master(), d.spec.sentinels[0]
    majority = [n.name for n in d.spec.nodes if n.name not in (master.name, sentinel.name)]
    cuts = [d.inject("isolate", node, majority) for node in (master, sentinel)]
    d.at(FAULT_AT + PARTITION_S)
    for fault in cuts:
        d.revert(fault)


def partition(guarded: bool) -> Scenario:
    return Scenario(
        "jepsen-2013-partition" + ("-guarded" if guarded else ""),
        f"the master and sentinel-1 partitioned from the majority for {PARTITION_S:g} s"
        + (" (min-replicas-to-write 1, min-replicas-max-lag 1)" if guarded else ""),
        _minority_partition,
        needs="isolate",
        config=GUARD if guarded else {},
    )


def jepsen_partition(spec: LabSpec, trial: Trial) -> Verdict:
    lines, shares, counts = [], {}, {}
    for guarded in (False, True):
        scenario = partition(guarded)
        where = trial.report_dir / scenario.name if trial.report_dir else None
        result = run_drill(
            spec, scenario, duration=RUN_S, workload=Workload(kind="set", direct=2), rate=RATE, report_dir=where
        )
        numbers = drill_figures(result)
        lost, acked = int(numbers["lost"]), int(numbers["acknowledged"])
        shares[guarded] = lost / acked if acked else 0.0
        counts[guarded] = (lost, acked)
        two = numbers["two_masters_s"]
        lines.append(
            f"{'with min-replicas-to-write 1' if guarded else 'unguarded'}: {lost:,} of {acked:,} acknowledged "
            f"writes lost ({shares[guarded]:.0%}); two masters for {two:.1f} s"
            + (f"; report: {where / 'report.html'}" if where else "")
        )
    lines.append(f"the paper (five hosts, 2013): {PAPER_LOST:.0%} of acknowledged writes lost")
    figures = {
        "lost": counts[False][0],
        "acknowledged": counts[False][1],
        "guarded_lost": counts[True][0],
        "guarded_acknowledged": counts[True][1],
        "paper_share_lost": PAPER_LOST,
    }
    if shares[False] > 0:
        return Verdict(
            "reproduced",
            f"{shares[False]:.0%} of acknowledged writes lost (paper: {PAPER_LOST:.0%}); guarded by "
            f"min-replicas-to-write, {counts[True][0]:,} lost of {counts[True][1]:,} acknowledged "
            f"(unguarded: {counts[False][0]:,} of {counts[False][1]:,})",
            lines,
            figures,
        )
    return Verdict("not reproduced", "no acknowledged write lost in the partition", lines, figures)


REPRODUCERS = (
    Reproducer(
        "jepsen-2013-partition",
        "https://aphyr.com/posts/283-jepsen-redis",
        "a partition leaves the master in a minority: its acknowledged writes are lost when it rejoins (paper: 56%)",
        jepsen_partition,
        needs="isolate",
    ),
)
