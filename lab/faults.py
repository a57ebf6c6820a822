"""Fault injection: every fault is recorded in the lab's state and reverted by its context manager,
by ``lab heal`` and by ``lab down``, so a crashed test never leaves a frozen node or a DROP rule.

Besides the node and network faults (``KINDS``), a drill's setting changes are faults too
(``config``: CONFIG SET on a data node, recorded with the values it replaced *before* it is applied),
so a drill killed with ``kill -9`` leaves nothing that ``lab heal`` does not restore.

Every fault registers its undo with the command under way (lab.interrupts) before it is applied: an
interrupted command thaws, removes isolation rules and restores settings at once; a killed or stopped
node is left down and recorded, for ``lab heal`` (the note looks at the node when the interrupt comes). A
node an interrupted revert had started again is made a replica of the current master (lab.nodes), not
left up as a second master."""

from __future__ import annotations

import hashlib
import signal
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace

import redis

from lab import clockshift, delayers, interrupts, links, nodes
from lab.backends import get_backend
from lab.backends.base import LINK_FAULTS
from lab.capabilities import accepts
from lab.errors import LabError, Unavailable, UsageError
from lab.faultlog import Fault as Fault  # the record lives in lab.faultlog (light: lab status reads it)
from lab.faultlog import isolated_nodes as isolated_nodes
from lab.faultlog import recorded as recorded
from lab.faultlog import save as _save
from lab.servers import Server
from lab.spec import LabSpec, Node
from lab.topology import node_client
from lab.waits import WaitTimeout, wait_for

KINDS = ("kill", "stop", "freeze", "isolate", "degrade", "flap", "clock")
#: How long a Sentinel restarted under the clock library runs its timer before its clock moves (its TILT
#: check compares each tick's wall clock with the last one's: it needs a last one).
CLOCK_SETTLE_S = 1.0


def forget(spec: LabSpec, names: list[str]) -> None:
    """Drop recorded kill/stop faults of nodes that were started again."""
    _save(spec, [f for f in recorded(spec) if not (f.kind in ("kill", "stop") and f.node in names)])


def inject(
    spec: LabSpec,
    kind: str,
    node_name: str,
    peers: list[str] | None = None,
    settings: tuple[tuple[str, str], ...] = (),
) -> Fault:
    """Apply a fault now and record it. ``peers`` (isolate, degrade, flap) defaults to every other node;
    ``settings`` are a link fault's parameters (lab.links: loss, delay, jitter, rate, direction; period;
    one_way)."""
    with nodes.locked(spec, f"{kind} {node_name}"):
        return _inject(spec, kind, node_name, peers, settings)


def unsupported_by_builds(spec: LabSpec, kind: str) -> str | None:
    """Why the lab's server builds rule a fault out, or None. Local isolation tells a node's peers
    from its clients by source address, which a build without bind-source-addr (Redis 6.2) does
    not set: its peers connect from 127.0.0.1, like every client."""
    if kind not in LINK_FAULTS or spec.layout != "local":  # (before any build is looked at: a kill needs none)
        return None
    for node in spec.redis_nodes + spec.sentinels:
        build = spec.server(node)
        if build is not None and (why := unsupported_by_build(build, kind)):
            return f"{node.name} runs {why}"
    return None


def unsupported_by_build(build: Server, kind: str) -> str | None:
    """Why a local lab on ``build`` cannot have the link fault ``kind`` (see :func:`unsupported_by_builds`)."""
    if kind not in LINK_FAULTS or accepts(build, "bind-source-addr"):
        return None
    return (
        f"{build.name}, which cannot bind its outgoing connections to its own address (bind-source-addr, Redis "
        "7.0+): its peers cannot be told from its clients on loopback (the compose backend isolates any build)"
    )


def _inject(
    spec: LabSpec, kind: str, node_name: str, peers: list[str] | None, settings: tuple[tuple[str, str], ...]
) -> Fault:
    if kind not in KINDS:
        raise LabError(f"unknown fault {kind!r} (choose from: {', '.join(KINDS)})")
    backend = get_backend(spec.backend)
    why = backend.unsupported(kind)
    if why:
        raise Unavailable(f"{kind} is not supported by the {spec.backend} backend here: {why}")
    if why := unsupported_by_builds(spec, kind):
        raise Unavailable(f"{kind} is not possible in lab {spec.name}: {why}")
    node = spec.node(node_name)
    if kind in ("degrade", "flap"):
        return _link_fault(spec, kind, node, tuple(peers or [n.name for n in spec.nodes if n != node]), settings)
    if kind == "clock":
        return _clock_fault(spec, node, settings)
    peer_nodes = [spec.node(p) for p in peers] if peers else [n for n in spec.nodes if n != node]
    fault = Fault(kind, node.name, tuple(p.name for p in peer_nodes) if kind == "isolate" else (), settings)
    if kind in ("kill", "stop"):
        interrupts.explain(fault.key, lambda: _left_down(spec, fault))
    else:
        interrupts.undo_on_interrupt(fault.key, lambda: _undo(spec, fault))
    if kind == "kill":
        backend.signal_node(spec, node, signal.SIGKILL)
    elif kind == "stop":
        backend.signal_node(spec, node, signal.SIGTERM)
    elif kind == "freeze":
        backend.signal_node(spec, node, signal.SIGSTOP)
    else:
        backend.add_rules(spec, _isolation(spec, fault))
    _save(spec, [*recorded(spec), fault])
    return fault


def _link_fault(
    spec: LabSpec, kind: str, node: Node, peers: tuple[str, ...], settings: tuple[tuple[str, str], ...]
) -> Fault:
    """A degraded or flapping link: its delayer (if packets are held), the record, then its rules. A
    kill -9 before the record leaves a delayer that ends by itself (lab.delayer); after it, the record,
    for ``lab heal``."""
    backend = get_backend(spec.backend)
    for other in recorded(spec):
        if other.kind not in ("degrade", "flap"):
            continue
        mine = other.node == node.name
        shared = [p for p in peers if (p in other.peers if mine else other.node == p and node.name in other.peers)]
        if shared:
            raise UsageError(
                f"{kind} {node.name}: its link(s) to {', '.join(shared)} are in {other.key} already: "
                f"`lab heal --name {spec.name} {other.node}` ends it"
            )
    fault = Fault(kind, node.name, peers, settings)
    current = [fault]  # (the undo below removes what is in place when an interrupt comes)
    interrupts.undo_on_interrupt(fault.key, lambda: _undo(spec, current[-1]))
    if kind == "flap" or links.Degradation.of(settings).holds:
        pid, queue = backend.start_delayer(spec, node, _delayer_args(spec, fault))
        current.append(fault := replace(fault, pid=pid, queue=queue))
    _save(spec, [*recorded(spec), fault])
    try:
        backend.add_rules(spec, _link_rules(spec, fault))
    except LabError:
        revert(spec, fault, rejoin=False)  # nothing applied half-way
        raise
    return fault


def _clock_fault(spec: LabSpec, node: Node, settings: tuple[tuple[str, str], ...]) -> Fault:
    """A Sentinel's wall clock jumps (``jump`` seconds, either way) or stands still (``stall`` seconds, then
    jumps forward by as much): it is restarted under lab.clockshift's library first, recorded before, so
    that heal and interrupts restart it with the real clock."""
    if node.kind != "sentinel":
        raise UsageError(f"clock {node.name}: clock faults are for Sentinels (a data node would be restarted)")
    if any(f.kind == "clock" and f.node == node.name for f in recorded(spec)):
        raise UsageError(
            f"clock {node.name}: its clock is moved already: `lab heal --name {spec.name} {node.name}` first"
        )
    values = {name: float(value) for name, value in settings}
    directory = spec.files(node).dir
    library = clockshift.library(directory)  # (before anything is touched: no compiler, nothing done)
    fault = Fault("clock", node.name, (), settings)
    interrupts.undo_on_interrupt(fault.key, lambda: _undo(spec, fault))
    _save(spec, [*recorded(spec), fault])
    clockshift.write(directory / clockshift.FILE)
    env = {"LD_PRELOAD": str(library), "LAB_CLOCK_FILE": str(directory / clockshift.FILE)}
    try:
        get_backend(spec.backend).restart_with(spec, node, env)
    except LabError:
        revert(spec, fault)  # nothing applied half-way: the real clock, the record gone
        raise
    time.sleep(CLOCK_SETTLE_S)
    clockshift.write(directory / clockshift.FILE, values.get("jump", 0.0), values.get("stall", 0.0))
    return fault


def _isolation(spec: LabSpec, fault: Fault) -> list[links.LinkRule]:
    return links.isolation_rules(spec, fault.node, fault.peers, dict(fault.settings).get("one_way", ""))


def _delayer_args(spec: LabSpec, fault: Fault) -> list[str]:
    """The delayer's parameters; the first queue it tries is the lab's and the link's own (labs side by
    side on one host, each taking the next free one)."""
    digest = hashlib.sha256(f"{spec.identity_dir} {fault.node} {fault.peers}".encode()).digest()
    args = ["--queue", str(1024 + int.from_bytes(digest[:4], "big") % 60_000)]
    values = dict(fault.settings)
    if fault.kind == "flap":
        return [*args, "--flap", values["period"]]
    degradation = links.Degradation.of(fault.settings)
    return [
        *args,
        "--delay",
        f"{degradation.delay_ms:g}",
        "--jitter",
        f"{degradation.jitter_ms:g}",
        "--rate",
        f"{degradation.rate:g}",
    ]


def _link_rules(spec: LabSpec, fault: Fault) -> list[links.LinkRule]:
    if fault.kind == "flap":
        return links.flap_rules(spec, fault.node, fault.peers, fault.queue)
    direction = dict(fault.settings).get("direction", "out")
    return links.degrade_rules(
        spec, fault.node, fault.peers, direction, links.Degradation.of(fault.settings), fault.queue
    )


def _undo(spec: LabSpec, fault: Fault) -> str | None:
    """An interrupted command's undo of ``fault``: what it did, or None if the fault was not in place."""
    node = spec.node(fault.node)
    frozen = fault.kind == "freeze" and get_backend(spec.backend).node_state(spec, node) == "frozen"
    revert(spec, fault)
    if fault.kind == "freeze":
        return f"thawed {node.name}" if frozen else None
    if fault.kind == "isolate":
        return f"removed the iptables rules isolating {node.name} from {', '.join(fault.peers)}"
    if fault.kind in ("degrade", "flap"):
        return f"removed the {fault.kind} of {node.name}'s links to {', '.join(fault.peers)}"
    if fault.kind == "clock":
        return f"restarted {node.name} with the real clock"
    return f"restored {', '.join(f'{name} {value}' for name, value in fault.settings)} on {node.name}"


def set_config(spec: LabSpec, values: dict[str, str | int], *, sentinels: bool = False) -> list[Fault]:
    """CONFIG SET ``values`` on every data node (``sentinels``: SENTINEL SET on every Sentinel, for the
    master it monitors), each node's change recorded as a ``config`` fault (with the values it replaces)
    before any node is changed: ``lab heal`` / ``lab down`` / an interrupt restore them, and a restored
    value is rewritten into the node's file (Sentinel's CONFIG REWRITE on a demotion would otherwise have
    put the drill's value there for good; a Sentinel rewrites its own on every SENTINEL SET)."""
    names = {key.replace("_", "-"): str(value) for key, value in values.items()}
    if not names:
        return []
    targets = spec.sentinels if sentinels else spec.redis_nodes
    with nodes.locked(spec, "config"):
        earlier = {f.node: dict(f.settings) for f in recorded(spec) if f.kind == "config"}
        changes: list[Fault] = []
        for node in targets:
            try:
                with node_client(spec, node, timeout=2) as conn:
                    current = _settings(spec, node, conn, list(names))
            except (redis.RedisError, OSError) as exc:
                raise LabError(
                    f"could not read {', '.join(names)} on {node.name} ({str(exc).splitlines()[0]}): nothing was set"
                ) from None
            # a change an earlier (killed) drill left recorded keeps the value from before it
            before = {name: earlier.get(node.name, {}).get(name) or current[name] for name in names}
            changes.append(Fault("config", node.name, settings=tuple(before.items())))
        for fault in changes:  # (registered before the record: an interrupt between the two undoes nothing wrong)
            interrupts.undo_on_interrupt(fault.key, lambda fault=fault: _undo(spec, fault))  # type: ignore[misc]
        _save(spec, [*recorded(spec), *changes])
        for node in targets:
            try:
                with node_client(spec, node, timeout=2) as conn:
                    _apply(spec, node, conn, names.items())
            except (redis.RedisError, OSError) as exc:
                # nothing applied half-way: what was set goes back (a node that cannot be restored stays recorded)
                _restore_all(spec, changes)
                left = [f.node for f in changes if f in recorded(spec)]
                raise LabError(
                    f"could not set {', '.join(names)} on {node.name} ({str(exc).splitlines()[0]}); the others "
                    "were restored"
                    + (f", but {', '.join(left)} stays recorded: `lab heal --name {spec.name}`" if left else "")
                ) from None
        return changes


def _restore_all(spec: LabSpec, changes: list[Fault]) -> list[str]:
    """Revert each of ``changes`` still recorded; what could not be restored (each stays recorded)."""
    failed = []
    still = recorded(spec)
    for fault in reversed(changes):
        if fault in still:
            try:
                _revert(spec, fault, rejoin=False)
            except LabError as exc:
                failed.append(str(exc))
    return failed


def restore_settings(spec: LabSpec, changes: list[Fault]) -> list[str]:
    """``set_config``'s changes back, those still recorded (a heal may have restored them): what could not
    be restored, each left recorded for ``lab heal``."""
    with nodes.locked(spec, "config"):
        return _restore_all(spec, changes)


def _settings(spec: LabSpec, node: Node, conn: redis.Redis, names: list[str]) -> dict[str, str]:
    """The values a node runs: CONFIG GET, or for a Sentinel what SENTINEL MASTER says of the lab's master."""
    if node.kind != "sentinel":
        return {name: str(conn.config_get(name)[name]) for name in names}
    reply = conn.execute_command("SENTINEL", "MASTER", spec.master_name)  # type: ignore[no-untyped-call]
    fields = reply if isinstance(reply, dict) else dict(zip(reply[::2], reply[1::2], strict=True))
    found = {str(k): str(v) for k, v in fields.items()}
    missing = [name for name in names if name not in found]
    if missing:
        raise UsageError(f"{node.name} has no Sentinel setting {', '.join(missing)} for {spec.master_name}")
    return {name: found[name] for name in names}


def _apply(spec: LabSpec, node: Node, conn: redis.Redis, values: Iterable[tuple[str, str]]) -> None:
    for name, value in values:
        if node.kind == "sentinel":
            conn.execute_command("SENTINEL", "SET", spec.master_name, name, value)  # type: ignore[no-untyped-call]
        else:
            conn.config_set(name, value)


def revert(spec: LabSpec, fault: Fault, *, rejoin: bool = True) -> None:
    """Undo one fault (restart a killed/stopped node, thaw, remove isolation rules); forget it.

    ``rejoin``: a data node that comes back as a stale master (restarted from its file, thawed, or
    reconnected after a partition) is pointed at the current master at once and its clients are
    disconnected, as Sentinel would do seconds later. A drill passes False to measure what
    Sentinel alone does."""
    with nodes.locked(spec, f"revert {fault.kind} {fault.node}"):
        _revert(spec, fault, rejoin)


def _revert(spec: LabSpec, fault: Fault, rejoin: bool = True) -> None:
    backend = get_backend(spec.backend)
    node = spec.node(fault.node)
    if fault.kind in ("kill", "stop"):
        if backend.node_state(spec, node) == "down":
            nodes.check_startable(spec)
            # an interrupt once the node runs again: it is made a replica and the fault forgotten, not
            # left up as a second master with the fault still recorded (see _finish_start)
            interrupts.undo_on_interrupt(fault.key, lambda: interrupts.uninterrupted(_finish_start, spec, node, fault))
            backend.start(spec, [node])
    elif fault.kind == "freeze":
        if backend.node_state(spec, node) == "frozen":
            backend.signal_node(spec, node, signal.SIGCONT)
    elif fault.kind == "config":
        _restore_config(spec, node, fault)
        rejoin = False  # (a setting, not a node that was away)
    elif fault.kind in ("degrade", "flap"):
        backend.delete_rules(spec, _link_rules(spec, fault))
        if fault.pid:
            delayers.stop(spec, fault.pid)
    elif fault.kind == "clock":
        backend.restart_with(spec, node, {})  # the real clock again (a fresh process: no TILT either)
        (spec.files(node).dir / clockshift.FILE).unlink(missing_ok=True)
    else:
        backend.delete_rules(spec, _isolation(spec, fault))
    if node.kind == "redis" and fault.kind != "config" and not rejoin:
        # a drill measures what Sentinel alone does with the stale master; an interrupt meanwhile ends the
        # measuring: the node is made a replica then, if Sentinel has not done it yet (idempotent: stays
        # registered until the command ends)
        interrupts.undo_on_interrupt(
            f"rejoin {node.name}", lambda: interrupts.uninterrupted(nodes.rejoin_stale, spec, node)
        )
    if rejoin and node.kind == "redis" and backend.node_state(spec, node) == "up":
        nodes.rejoin_as_replica(spec, node)
    _save(spec, [f for f in recorded(spec) if f != fault])
    interrupts.done(fault.key)


def _left_down(spec: LabSpec, fault: Fault) -> interrupts.Outcome | None:
    """What an interrupt leaves of a kill/stop fault, as the node stands when it comes."""
    node = spec.node(fault.node)
    how = "killed" if fault.kind == "kill" else "stopped"
    heal = f"`lab heal --name {spec.name}` restarts it"
    if get_backend(spec.backend).node_state(spec, node) == "down":
        return "left", f"{node.name} {how} ({'recorded: ' if fault in recorded(spec) else ''}{heal})"
    if fault in recorded(spec):  # running again, but not forgotten (its undo failed: said above)
        return "left", f"{node.name} runs again but its {fault.kind} stays recorded (`lab heal --name {spec.name}`)"
    return None  # not killed yet, or restarted and forgotten (its undo said so)


def _finish_start(spec: LabSpec, node: Node, fault: Fault) -> str | None:
    """An interrupted revert of a kill/stop, once the node was started: make it a replica, forget the fault.
    None when the node is not running (the note says it is left down, recorded)."""
    if get_backend(spec.backend).node_state(spec, node) != "up":
        return None
    _save(spec, [f for f in recorded(spec) if f != fault])  # it runs: the fault is over, whatever follows
    rejoined = nodes.rejoin_stale(spec, node)
    return f"{node.name} was started again" + (f" and {rejoined}" if rejoined else "")


def _restore_config(spec: LabSpec, node: Node, fault: Fault) -> None:
    """CONFIG SET (SENTINEL SET) the values from before, and rewrite them into the node's file. A connection the node
    closes is tried again for a few seconds: Sentinel kills every normal client of a node it reconfigures
    (a promotion, a demotion), and a heal right after a failover met that (CI, saturated)."""

    def restore() -> tuple[bool, str]:
        try:
            with node_client(spec, node, timeout=2) as conn:
                _apply(spec, node, conn, fault.settings)
                if node.kind != "sentinel":  # (SENTINEL SET rewrites the Sentinel's file itself)
                    conn.config_rewrite()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            return False, str(exc)
        return True, "restored"

    try:
        wait_for(restore, what=f"{node.name} to take its settings back", timeout=10, interval=0.2)
    except (redis.RedisError, OSError, WaitTimeout) as exc:
        raise LabError(
            f"cannot restore {', '.join(f'{n} {v}' for n, v in fault.settings)} on {node.name} ({exc}); "
            f"it stays recorded: `lab heal --name {spec.name}` tries again"
        ) from None


def heal(spec: LabSpec, *, settings: bool = True) -> list[Fault]:
    """Revert every recorded fault, then anything a crash left unrecorded (frozen or dead nodes, rules).
    ``settings=False`` keeps the recorded setting changes: a drill heals the lab with its settings still
    in force (they are part of what it measures) and restores them once it is done."""
    with nodes.locked(spec, "heal"):
        return _heal(spec, settings)


def _heal(spec: LabSpec, with_settings: bool = True) -> list[Fault]:
    undone = []
    settings = [f for f in recorded(spec) if f.kind == "config"] if with_settings else []
    for fault in reversed([f for f in recorded(spec) if f.kind != "config"]):
        revert(spec, fault)
        undone.append(fault)
    backend = get_backend(spec.backend)
    backend.heal_isolation(spec)
    delayers.stop_all(spec)  # (one a killed command started and had not recorded yet)
    nodes.unpause_writes(spec, [n for n in spec.redis_nodes if backend.node_state(spec, n) == "up"])
    for node in spec.nodes:
        current = backend.node_state(spec, node)
        if current in ("frozen", "down"):
            fault = Fault("freeze" if current == "frozen" else "kill", node.name)
            revert(spec, fault)
            undone.append(fault)
    nodes.unchain_replicas(spec, [n for n in spec.redis_nodes if backend.node_state(spec, n) == "up"])
    for fault in reversed(settings):  # last: every node is running again
        revert(spec, fault)
        undone.append(fault)
    return undone


@contextmanager
def injected(
    spec: LabSpec, kind: str, node: str, peers: list[str] | None = None, settings: tuple[tuple[str, str], ...] = ()
) -> Iterator[Fault]:
    """``with injected(spec, 'freeze', 'redis-1'):`` - the fault is reverted on exit, whatever happens."""
    fault = inject(spec, kind, node, peers, settings)
    try:
        yield fault
    finally:
        if fault in recorded(spec):
            revert(spec, fault)
