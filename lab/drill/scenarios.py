"""Failover drills as data: each scenario is a name, what it does to the lab and when. ``run_drill``
records a workload through it (lab.drill.history), heals the lab, checks the history (lab.drill.checker) and
writes the report (lab.drill.report). Findings are data: a drill that loses writes still ran."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from lab import control, faults, interrupts, nodes
from lab.backends import get_backend
from lab.drill.alerting import AlertWatch
from lab.drill.checker import check
from lab.drill.history import Recorder, Workload
from lab.drill.result import DrillResult
from lab.drill.steps import config_set, wait_converged
from lab.errors import LabError
from lab.failover import failover, why_not_coordinated
from lab.links import Degradation
from lab.links import peers as link_peers
from lab.servers import Server
from lab.spec import LabSpec, Node

FAULT_AT = 1.0  # seconds of steady workload before the fault
#: The workload runs at least this long after the scenario's last step returns, however long the step
#: took (a failover that Sentinel aborts and retries can outlast the planned workload): whether the
#: clients recovered is only visible with time left to recover in.
RECOVERY_TAIL_S = 3.0
FREEZE_FOR = 5.0  # past down-after in the lab profile: a failover happens, then the zombie thaws
ISOLATE_FOR = 6.0
LINK_FOR = 8.0  # a degraded link's span (lossy-master, one-way-master, flapping-partition)
SPIKE_FOR = 4.0
SPIKE_MS = 1500  # above the lab profile's down-after (1000 ms): the Sentinels hear the master too late
SLOW_BEFORE_KILL = 4.0  # how long the replicas fall behind on their narrowed link before the master dies
CLOCK_JUMP_S = 30  # a Sentinel whose clock jumps enters TILT for 30 s: it watches and does nothing
SLOW_RATE = 256e3  # bits a second: below the replication stream of 1,000 writes a second (~400 kbit/s)


@dataclass
class Run:
    """One run of a scenario, what it acts on: the lab, the recorder (faults go into its history), the timings."""

    spec: LabSpec
    recorder: Recorder
    duration: float
    injected: list[faults.Fault] = field(default_factory=list)
    started: float = 0.0  # clock seconds when the workload was running (a client adapter took a while)
    upgrade_to: Sequence[Server] = ()  # rolling-upgrade: the builds to move the lab to, in order

    def at(self, seconds: float) -> None:
        """Wait until ``seconds`` into the workload."""
        delay = self.started + seconds - self.recorder.history.clock.seconds()
        if delay > 0:
            time.sleep(delay)

    def elapsed(self) -> float:
        """Seconds since the workload started."""
        return self.recorder.history.clock.seconds() - self.started

    def master(self) -> Node:
        return nodes.current_master(self.spec, timeout=10)

    @contextmanager
    def step(self, name: str, kind: str, node: Node) -> Iterator[None]:
        """One step of a multi-step drill: its span is in the history (the checker reports each
        step's unavailability and losses) and on the timeline."""
        self.recorder.history.add("step", event="start", step=name)
        self.recorder.fault("inject", kind, node.name)
        try:
            yield
        finally:
            self.recorder.fault("revert", kind, node.name)
            self.recorder.history.add("step", event="end", step=name)

    def inject(
        self, kind: str, node: Node, peers: list[str] | None = None, settings: tuple[tuple[str, str], ...] = ()
    ) -> faults.Fault:
        """Stamped when the injection starts and again once it has taken effect (an isolation's rules
        take seconds to apply: what the clients saw meanwhile belongs to neither side of one stamp)."""
        how = dict(settings).get("one_way", "")
        self.recorder.fault("inject", kind, node.name, how)
        fault = faults.inject(self.spec, kind, node.name, peers, settings)
        self.recorder.fault("applied", kind, node.name, how)
        self.injected.append(fault)
        return fault

    def failover(self, old: Node, safe: bool, coordinated: bool = False) -> None:
        """``lab failover`` on the master ``old``; the span in which a safe one held the old master's
        writes (CLIENT PAUSE WRITE) is stamped: that master still says master, and takes no write."""

        def paused(on: bool) -> None:
            self.recorder.history.add("pause", node=old.name, event="start" if on else "end")

        failover(self.spec, safe=safe, on_pause=paused, coordinated=coordinated)

    def revert(self, fault: faults.Fault) -> None:
        node = self.spec.node(fault.node)
        if node.kind == "redis":
            watch_stale_master(self.spec, node)
        faults.revert(self.spec, fault, rejoin=False)  # a drill measures what Sentinel alone does
        self.recorder.fault("revert", fault.kind, fault.node)
        self.injected.remove(fault)


def _kill_master(d: Run) -> None:
    d.at(FAULT_AT)
    d.inject("kill", d.master())


def _stop_master(d: Run) -> None:
    d.at(FAULT_AT)
    d.inject("stop", d.master())


def _freeze_master(d: Run) -> None:
    d.at(FAULT_AT)
    fault = d.inject("freeze", d.master())
    d.at(FAULT_AT + FREEZE_FOR)
    d.revert(fault)  # the zombie thaws; Sentinel alone decides when it stops taking writes


def _isolate_master(d: Run) -> None:
    d.at(FAULT_AT)
    fault = d.inject("isolate", d.master())
    d.at(FAULT_AT + ISOLATE_FOR)
    d.revert(fault)  # the partition heals; Sentinel alone decides when the stale master is demoted


def _degraded(degradation: Degradation, direction: str, links: str | None, span: float) -> Callable[[Run], None]:
    """The master's links (``links``: a class, None: all of them) degraded for ``span`` seconds."""

    def act(d: Run) -> None:
        d.at(FAULT_AT)
        master = d.master()
        peers = link_peers(d.spec, master, links)
        fault = d.inject("degrade", master, peers, (*degradation.settings(), ("direction", direction)))
        d.at(FAULT_AT + span)
        d.revert(fault)

    return act


def _one_way_master(d: Run) -> None:
    """The master hears every other node, and what it sends them is lost."""
    d.at(FAULT_AT)
    fault = d.inject("isolate", d.master(), settings=(("one_way", "out"),))
    d.at(FAULT_AT + LINK_FOR)
    d.revert(fault)


def _flapping_partition(d: Run) -> None:
    d.at(FAULT_AT)
    fault = d.inject("flap", d.master(), settings=(("period", "2"),))
    d.at(FAULT_AT + LINK_FOR)
    d.revert(fault)


def _slow_replication_then_kill_master(d: Run) -> None:
    """The replication stream narrowed below what the clients write: the replicas fall behind, then the
    master dies. What they had not received is what a failover loses."""
    d.at(FAULT_AT)
    master = d.master()
    peers = link_peers(d.spec, master, "replication")
    d.inject("degrade", master, peers, (*Degradation(rate=SLOW_RATE).settings(), ("direction", "out")))
    d.at(FAULT_AT + SLOW_BEFORE_KILL)
    d.inject("kill", master)


def _sentinel_clock_jump_then_kill_master(d: Run) -> None:
    """sentinel-1's wall clock jumps forward (TILT: it watches and does nothing), then the master dies:
    the other two Sentinels (quorum 2) must fail it over without it."""
    d.at(FAULT_AT)
    d.inject("clock", d.spec.sentinels[0], settings=(("jump", f"{CLOCK_JUMP_S:g}"),))
    d.at(d.elapsed() + 0.5)
    d.inject("kill", d.master())


def _freeze_sentinel_then_kill_master(d: Run) -> None:
    """A Sentinel that accepts connections but never answers (a hung host), then the master dies:
    the first Sentinel a client asks is the frozen one."""
    d.at(FAULT_AT)
    d.inject("freeze", d.spec.sentinels[0])
    d.at(FAULT_AT + 0.5)
    d.inject("kill", d.master())


def _failover(safe: bool, coordinated: bool = False) -> Callable[[Run], None]:
    kind = "failover-coordinated" if coordinated else "failover" if safe else "failover-unsafe"

    def act(d: Run) -> None:
        d.at(FAULT_AT)
        old = d.master()
        d.recorder.fault("inject", kind, old.name)
        d.failover(old, safe, coordinated)
        d.recorder.fault("revert", kind, old.name)

    return act


def _kill_sentinel(d: Run) -> None:
    d.at(FAULT_AT)
    d.inject("kill", d.spec.sentinels[0])


def _quorum_loss(d: Run) -> None:
    d.at(FAULT_AT)
    d.inject("kill", d.spec.sentinels[0])
    d.inject("kill", d.spec.sentinels[1])  # one Sentinel left: it cannot be authorized to fail over


def _kill_master_and_sentinel(d: Run) -> None:
    d.at(FAULT_AT)
    master = d.master()
    # The host that held both dies: on a deployment where a Sentinel shares the master's host (lab attach), that
    # one; else (every node its own address) the first.
    beside = next((s for s in d.spec.sentinels if s.host == master.host), d.spec.sentinels[0])
    d.inject("kill", beside)
    d.inject("kill", master)


def _rolling_upgrade(d: Run) -> None:
    """For each target build: the replicas one by one, a safe failover to an upgraded replica, the
    old master, then the Sentinels one by one; every node keeps its data. Then a steady second."""
    from lab.upgrade import upgrade

    d.at(FAULT_AT)
    for target in d.upgrade_to:
        old_master = d.master()
        replicas = [n for n in d.spec.redis_nodes if n != old_master]
        for node in [*replicas, old_master, *d.spec.sentinels]:
            if node == old_master:
                with d.step(f"failover away from {old_master.name}", "failover", old_master):
                    d.failover(old_master, safe=True)
            with d.step(f"{node.name} to {target.name}", "upgrade", node):
                d.spec = upgrade(d.spec, node.name, target).spec
    d.at(d.elapsed() + FAULT_AT)


def _restart_all(d: Run) -> None:
    """A cold start of every node from its files (a data centre power cut and return)."""
    d.at(FAULT_AT)
    backend = get_backend(d.spec.backend)
    order = [*d.spec.sentinels, *d.spec.redis_nodes]

    def left() -> interrupts.Outcome | None:  # an interrupt between the stop and the start
        down = [n.name for n in order if backend.node_state(d.spec, n) == "down"]
        if not down:
            return None
        return "left", f"stopped by restart-all: {', '.join(down)} (`lab heal --name {d.spec.name}` starts them)"

    interrupts.explain("restart-all", left)
    for node in order:
        d.recorder.fault("inject", "stop", node.name)
    backend.stop(d.spec, order)
    for node in order:
        d.recorder.fault("applied", "stop", node.name)
    control.start_nodes(d.spec, backend, d.spec.nodes, fresh=False)
    interrupts.done("restart-all")
    for node in order:
        d.recorder.fault("revert", "stop", node.name)


@dataclass(frozen=True)
class Scenario:
    name: str
    about: str
    act: Callable[[Run], None]
    needs: str = ""  # a fault kind the backend must support
    #: Why a lab cannot run it (its builds, its users), or None: checked before the drill starts.
    requires: Callable[[LabSpec], str | None] | None = None
    #: CONFIG SET on every data node for the whole drill (until after the heal), then restored.
    config: dict[str, int] = field(default_factory=dict)
    #: The scenario's own steps set its length (``--duration`` is not used).
    open_ended: bool = False


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("kill-master", "SIGKILL the master", _kill_master),
        Scenario("stop-master", "SIGTERM the master (a clean shutdown)", _stop_master),
        Scenario("freeze-master", f"SIGSTOP the master for {FREEZE_FOR:g} s, then thaw it (a zombie)", _freeze_master),
        Scenario(
            "isolate-master",
            f"cut the master off from every other node for {ISOLATE_FOR:g} s (clients still reach it)",
            _isolate_master,
            needs="isolate",
        ),
        Scenario(
            "isolate-master-guarded",
            "isolate-master with min-replicas-to-write 1 and min-replicas-max-lag 1",
            _isolate_master,
            needs="isolate",
            config={"min_replicas_to_write": 1, "min_replicas_max_lag": 1},
        ),
        Scenario("failover", "safe manual failover (lab failover)", _failover(True)),
        Scenario("failover-unsafe", "bare SENTINEL FAILOVER", _failover(False)),
        Scenario(
            "failover-coordinated",
            "Valkey 9's SENTINEL FAILOVER ... COORDINATED (lab failover --coordinated)",
            _failover(False, coordinated=True),
            requires=why_not_coordinated,
        ),
        Scenario("kill-sentinel", "SIGKILL one Sentinel", _kill_sentinel),
        Scenario(
            "quorum-loss",
            "SIGKILL two of the three Sentinels: the master serves on, but no failover can happen",
            _quorum_loss,
        ),
        Scenario(
            "freeze-sentinel-kill-master",
            "SIGSTOP the first Sentinel (a hung host), then SIGKILL the master",
            _freeze_sentinel_then_kill_master,
        ),
        Scenario("kill-master-and-sentinel", "the host of the master and a Sentinel dies", _kill_master_and_sentinel),
        Scenario("restart-all", "stop every node, then start them all from their files", _restart_all),
        Scenario(
            "sentinel-clock-jump",
            f"sentinel-1's wall clock jumps {CLOCK_JUMP_S:g} s forward (TILT), then the master is killed",
            _sentinel_clock_jump_then_kill_master,
            needs="clock",
        ),
        Scenario(
            "lossy-master",
            f"30% of the master's packets lost, both ways, on all its links for {LINK_FOR:g} s",
            _degraded(Degradation(loss=30), "both", None, LINK_FOR),
            needs="degrade",
        ),
        Scenario(
            "slow-replication",
            f"the master's replication links narrowed to {SLOW_RATE / 1e3:g} kbit/s, then the master killed "
            f"{SLOW_BEFORE_KILL:g} s later",
            _slow_replication_then_kill_master,
            needs="degrade",
        ),
        Scenario(
            "one-way-master",
            f"what the master sends to the other nodes is lost for {LINK_FOR:g} s (it hears them; clients reach it)",
            _one_way_master,
            needs="isolate",
        ),
        Scenario(
            "flapping-partition",
            f"the master cut off from the other nodes for 1 s of every 2 s, for {LINK_FOR:g} s",
            _flapping_partition,
            needs="flap",
        ),
        Scenario(
            "latency-spike",
            f"everything the master sends held {SPIKE_MS} ms for {SPIKE_FOR:g} s (above down-after: it is alive)",
            _degraded(Degradation(delay_ms=SPIKE_MS), "out", None, SPIKE_FOR),
            needs="degrade",
        ),
        Scenario(
            "rolling-upgrade",
            "upgrade the replicas, fail over safely, upgrade the old master, then the Sentinels (--from, --to)",
            _rolling_upgrade,
            open_ended=True,
        ),
    )
}


def degraded_master(degradation: Degradation, span: float) -> Scenario:
    """A scenario of the master's links degraded for ``span`` seconds (lab sweep's cells): a loss both ways,
    a delay on what it sends (as latency-spike)."""
    direction = "both" if degradation.loss else "out"
    what = f"loss-{degradation.loss:g}" if degradation.loss else f"delay-{degradation.delay_ms:g}"
    return Scenario(
        f"degraded-master-{what}",
        f"the master's links degraded ({what.replace('-', ' ')}, {direction}) for {span:g} s",
        _degraded(degradation, direction, None, span),
        needs="degrade",
    )


#: The drills of degraded, one-way and flapping links (lab.links) and of a moved clock (lab.clockshift):
#: `lab clients` runs them when named.
LINK_AND_CLOCK_SCENARIOS = (
    "lossy-master", "slow-replication", "one-way-master", "flapping-partition", "latency-spike", "sentinel-clock-jump",
)  # fmt: skip


def check_supported(spec: LabSpec, scenario: str | Scenario, what: str = "drill") -> None:
    """Refuse a scenario whose fault this lab's backend or builds cannot inject."""
    chosen = scenario if isinstance(scenario, Scenario) else SCENARIOS[scenario]
    needs, scenario = chosen.needs, chosen.name
    if needs and (why := get_backend(spec.backend).unsupported(needs)):
        raise LabError(f"{what} {scenario} needs {needs}, which the {spec.backend} backend cannot do here: {why}")
    if needs and (why := faults.unsupported_by_builds(spec, needs)):
        raise LabError(f"{what} {scenario} needs {needs}: {why}")
    if chosen.requires is not None and (why := chosen.requires(spec)):
        raise LabError(f"{what} {scenario} is not applicable to lab {spec.name}: {why}")


def stale_key(node: Node) -> str:
    """The interrupt log's key for a reverted data node that may run as a stale master until Sentinel converts it."""
    return f"stale master {node.name}"


def watch_stale_master(spec: LabSpec, node: Node) -> None:
    """Back from a kill, a stop, a freeze or a partition (or restarted mid-failover by the heal), a data node may
    run as a stale master beside the new one until Sentinel converts it, seconds later: an interrupt meanwhile
    makes it a replica of the master the Sentinels settle on, as Sentinel would, rather than leave two masters.
    Done once the drill has settled (:func:`_settle`)."""
    interrupts.undo_on_interrupt(stale_key(node), lambda: interrupts.uninterrupted(nodes.rejoin_stale, spec, node))


def _settle(spec: LabSpec, recorder: Recorder) -> str:
    """After the heal: wait for a healthy lab and read what the converged master kept. A lab that
    cannot become healthy (a replica that cannot sync from a newer build) is a finding: the final
    read goes to the master the Sentinels agree on, and the reason is returned for the report."""
    try:
        control.wait_healthy(spec, timeout=60)
        master = wait_converged(spec)
        for node in spec.redis_nodes:
            interrupts.done(stale_key(node))
        why = ""
    except LabError as exc:
        why = f"not healthy after the heal: {str(exc).splitlines()[0]}"
        master = nodes.current_master(spec)
    recorder.final(master)
    return why


def run_drill(
    spec: LabSpec,
    scenario: str | Scenario,
    *,
    duration: float = 10.0,
    clients: int = 4,
    workload: str | Workload = "set",
    report_dir: Path | None = None,
    client: str | None = None,
    settings: str = "defaults",
    upgrade_to: Sequence[Server] = (),
    rate: float | None = None,
) -> DrillResult:
    """Record ``clients`` workers through the scenario for ``duration`` seconds, heal, check, report.
    ``client`` runs the workload in that client library's adapter (lab.drill.clients) instead of here.
    ``upgrade_to``: the builds a rolling upgrade moves the lab to, in order. ``rate``: operations per
    second across the workers (default: the workload's own, else as fast as they go)."""
    chosen = scenario if isinstance(scenario, Scenario) else SCENARIOS.get(scenario)
    if chosen is None:
        raise LabError(f"unknown drill {scenario!r} (choose from: {', '.join(SCENARIOS)})")
    scenario = chosen.name
    if chosen.open_ended and client is not None:
        raise LabError(f"drill {scenario} runs as long as its steps take: it records redis-py workers only")
    if rate is not None and (client is not None or rate <= 0):
        raise LabError("a drill's rate paces the lab's own workers: a positive number, and no client adapter")
    if scenario == "rolling-upgrade" and not upgrade_to:
        raise LabError("drill rolling-upgrade needs the builds to upgrade to (--to NAME[,NAME...])")
    check_supported(spec, chosen)
    started = time.perf_counter()
    adapter = None
    if client is not None:
        from lab.drill.clients import CLIENTS, AdapterRun

        prefix = f"m:{client}:{settings}:{scenario}:{int(time.time() * 1000)}"
        adapter = AdapterRun(CLIENTS[client], spec, settings, report_dir, clients=clients, prefix=prefix)
    chosen_workload = workload if isinstance(workload, Workload) else Workload(kind=workload)
    if rate is not None:
        chosen_workload = replace(chosen_workload, rate=rate)
    watch = AlertWatch(spec) if spec.monitoring else None
    if watch:
        watch.begin()  # (the alerts of an earlier drill resolve first)
    recorder = Recorder(spec, None if adapter else chosen_workload, clients, adapter=adapter, duration=duration)
    run = Run(spec, recorder, duration, upgrade_to=upgrade_to)
    acted = 0.0
    interrupted = False
    with config_set(spec, **chosen.config), recorder:
        run.started = recorder.history.clock.seconds()
        recorder.history.add("drill", event="start", scenario=scenario)
        try:
            chosen.act(run)
            acted = run.elapsed()
            if not chosen.open_ended:
                run.at(max(duration, acted + RECOVERY_TAIL_S))
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM (lab.interrupts): no heal, no report
            interrupted = True
            recorder.abort()  # the command's undo log reverts what was injected, and says so
            raise
        finally:
            spec = run.spec  # a step may have moved a node to another build
            if not interrupted:
                recorder.history.add("drill", event="stop", scenario=scenario)
                recorder.stop_workload()  # the Sentinels' events and roles are recorded on through the heal
                recorder.history.add("drill", event="heal", scenario=scenario)
                for node in spec.redis_nodes:
                    watch_stale_master(spec, node)
                faults.heal(spec, settings=False)  # (a guard set for the drill stays until it is done)
                for fault in run.injected:
                    recorder.fault("revert", fault.kind, fault.node)
        unhealthy = _settle(spec, recorder)
    if watch:
        watch.finish(recorder, scenario, report_dir)
    addresses = {n.address: n.name for n in spec.redis_nodes}
    findings = check(recorder.history.records, addresses)
    if unhealthy:
        findings.notes.append(unhealthy)
    if not chosen.open_ended and acted > duration:
        findings.notes.append(
            f"the scenario's steps took {acted:.1f}s, longer than the {duration:g}s workload: it ran on until "
            f"{RECOVERY_TAIL_S:g}s after them"
        )
    result = DrillResult(scenario, findings, recorder, report_dir, time.perf_counter() - started)
    if report_dir is not None:
        from lab.drill.report import write_report

        write_report(result, spec, report_dir)
    return result
