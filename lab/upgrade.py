"""Change one node's server build in place, the way an operator upgrades a host: stop the node,
check that the new build can read its data, adapt the node's own config file (it holds what Redis
and Sentinel rewrote into it) to what that build accepts, start it on the new build with its data,
and wait until the lab is healthy again.

A downgrade the data format forbids is refused before anything stops: an RDB file (or the RDB
preamble of an AOF) newer than the target reads, or a multi-part AOF directory (Redis 7.0+) on a
build that only knows the single-file AOF (it would start empty and then replicate that emptiness).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from lab import control, interrupts, nodes, procs, state
from lab.backends import get_backend
from lab.capabilities import accepts, adapt_file
from lab.confparse import parse
from lab.errors import LabError
from lab.servers import FOREIGN_TO_VALKEY, NoAnswer, Server, probe
from lab.spec import LabSpec, Node

#: An RDB header: ``REDIS0011`` (four digits), or Valkey 9's ``VALKEY080`` (three).
RDB_MAGIC = (b"REDIS", b"VALKEY")


@dataclass(frozen=True)
class Upgraded:
    spec: LabSpec
    node: Node
    before: Server
    after: Server
    removed: list[str]  # directives left out of the node's file for the new build
    seconds: float  # from stop to a healthy lab


def rdb_version(path: Path) -> int | None:
    """The format version in an RDB header (``REDIS0011``, ``VALKEY080``), or None for anything else."""
    try:
        with path.open("rb") as handle:
            head = handle.read(9)
    except OSError:
        return None
    for magic in RDB_MAGIC:
        if head.startswith(magic) and head[len(magic) :].isdigit():
            return int(head[len(magic) :])
    return None


def reads_multipart_aof(target: Server) -> bool:
    """Whether ``target`` reads a multi-part AOF directory (Redis 7.0+)."""
    return accepts(target, "appenddirname")


def reads_rdb(target: Server, version: int) -> bool:
    """Whether ``target`` reads RDB format ``version`` (:meth:`Server.reads_rdb`)."""
    return target.reads_rdb(version)


def _reads(target: Server) -> str:
    """What ``target`` reads, for a refusal."""
    own = target.rdb_version
    if target.flavour == "valkey" and (own is None or own >= FOREIGN_TO_VALKEY.stop):
        mine = f" and its own {own}" if own is not None else ""
        return f"{target.name} reads up to {FOREIGN_TO_VALKEY.start - 1}{mine} (none of Redis 7.4+'s)"
    if own is None:
        return f"{target.name} reads no Valkey format"
    return f"{target.name} reads up to {own}"


def unreadable_after(before: Server, target: Server) -> str | None:
    """Why ``target`` cannot read what a node on ``before`` writes, by the two builds alone (the same rules
    as :func:`unreadable_data`, for a move planned before any data exists), or None."""
    if reads_multipart_aof(before) and not reads_multipart_aof(target):
        return f"{before.name} keeps a multi-part AOF (Redis 7.0+) that {target.name} cannot read: it would start empty"
    if before.rdb_version is not None and not reads_rdb(target, before.rdb_version):
        return f"{before.name} writes RDB format {before.rdb_version}; {_reads(target)}"
    return None


def unreadable_data(spec: LabSpec, node: Node, target: Server) -> str | None:
    """Why ``target`` cannot load what ``node`` has on disk, or None."""
    if node.kind != "redis":
        return None
    files = spec.files(node)
    conf = parse(files.conf)
    aof_dir = files.dir / (conf.value("appenddirname", "appendonlydir").strip('"'))
    if aof_dir.is_dir() and any(aof_dir.iterdir()) and not reads_multipart_aof(target):
        return (
            f"{node.name} keeps a multi-part AOF ({aof_dir.name}/, Redis 7.0+) that {target.name} cannot read: "
            "it would start empty"
        )
    candidates = [*files.dir.glob("*.rdb"), *files.dir.glob("*.aof")]
    if aof_dir.is_dir():
        candidates += [*aof_dir.glob("*.base.rdb"), *aof_dir.glob("*.base.aof")]
    for path in sorted(candidates):
        version = rdb_version(path)
        if version is not None and not reads_rdb(target, version):
            return f"{node.name}'s {path.relative_to(files.dir)} is RDB format {version}; {_reads(target)}"
    return None


def current_build(spec: LabSpec, node: Node) -> Server:
    """The build ``node`` runs: the one the lab records (the system's for a lab from before builds were
    recorded); when that file was renamed or deleted since the node started (local backend), what the node's
    process itself runs, through /proc/PID/exe."""
    try:
        found = spec.server(node)
    except NoAnswer:
        if spec.backend != "local":
            raise
        from lab.backends.local import binary_of

        files = spec.files(node)
        pid, _ = procs.node_pid(files.pidfile, files.dir, binary_of(spec, node))
        if pid is None:
            raise
        return probe(f"/proc/{pid}/exe", "process")
    if found is None:
        from lab.servers import system

        return system()
    return found


def upgrade(spec: LabSpec, node_name: str, target: Server, timeout: float = control.HEALTHY_TIMEOUT) -> Upgraded:
    """Restart one node on ``target`` with its data; the lab must be healthy before and is after."""
    node = spec.node(node_name)
    with nodes.locked(spec, f"upgrade {node_name}"):
        before = current_build(spec, node)
        if before.same_file(target):
            raise LabError(f"{node.name} already runs {target.name} ({target.server_bin})")
        # The same build from another file (a copy, another name) is a move too: the node then runs that file.
        why = unreadable_data(spec, node, target)
        if why:
            raise LabError(f"refusing to move {node.name} from {before.name} to {target.name}: {why}")
        backend = get_backend(spec.backend)
        if backend.node_state(spec, node) != "up":
            raise LabError(f"{node.name} is not running: `lab heal --name {spec.name}` first")
        started = time.perf_counter()
        move = f"upgrade {node.name}"

        def left() -> interrupts.Outcome:  # what an interrupt leaves (lab.interrupts), as it stands then
            try:
                build = (spec.server(node) or before).name
            except LabError:  # the recorded file is gone: the move had not been recorded yet
                build = before.name
            if backend.node_state(spec, node) == "down":
                return "left", (
                    f"{node.name} is stopped, mid-move from {before.name} to {target.name}: "
                    f"`lab heal --name {spec.name}` starts it on {build}, the build the lab records"
                )
            if build == target.name:
                return "left", f"{node.name} runs {target.name} now (the lab was not healthy again yet)"
            return "left", f"{node.name} still runs {before.name} (the move had not begun)"

        interrupts.explain(move, left)
        nodes.check_startable(spec)  # before the stop: a node that cannot start again is not stopped
        backend.stop(spec, [node])
        removed = adapt_file(spec.files(node).conf, target)
        spec = spec.with_server(node, target)
        state.update(spec)
        control.start_nodes(spec, backend, [node], fresh=False)
        try:
            control.wait_healthy(spec, timeout)
        except LabError as exc:  # the move itself is done and recorded: say so, then what still stands
            raise LabError(f"{node.name} now runs {target.name}, but {exc}") from exc
        interrupts.done(move)
        return Upgraded(spec, node, before, target, removed, time.perf_counter() - started)
