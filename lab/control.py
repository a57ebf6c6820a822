"""The lab lifecycle, in one direction: load profile -> spec -> render -> save state -> backend start
-> wait healthy. Backends only start, stop, signal and observe; this module decides what to create,
holds the lab's lock, and on failure rolls back only what the failed command itself created.

- A new lab that fails (or is interrupted with Ctrl-C / SIGTERM) is removed completely.
- A repair (``up`` of a lab with dead nodes) that fails stops nothing and deletes nothing: it names
  the node that did not start and where its log is.
- ``down`` stops everything and removes the lab's directory; what it cannot remove (containers
  while Docker is gone) it names, and it keeps the state so that a later ``down`` can finish.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from lab import delayers, faults, procs, servers, state
from lab.backends import BACKENDS, get_backend, log_tails
from lab.backends.base import Backend
from lab.errors import LabError, NetworkOverlap, NodeStartError, UsageError
from lab.home import validate_name
from lab.interrupts import interruptible, shielded
from lab.lock import lab_lock
from lab.monitoring import config as monitoring_config
from lab.monitoring import stack
from lab.nodes import check_startable, rejoin_as_replica
from lab.profile import Profile, load_profile
from lab.render import render_lab
from lab.spec import NODE_NAMES, LabSpec, Node, build_spec
from lab.status import status as status  # lab status's document lives in lab.status (light)
from lab.tls import TLS_DIR, issue_lab_certificates
from lab.topology import INCOMPATIBLE, Observation, observe, problems
from lab.waits import WaitTimeout, wait_for

HEALTHY_TIMEOUT = 30.0
STUCK_GRACE = 3.0  # seconds a replica may fail to sync from a newer build before that is final
NET_ATTEMPTS = 5


@dataclass
class UpResult:
    spec: LabSpec
    already_running: bool
    seconds: float
    restarted: list[str] = field(default_factory=list)  # nodes and monitoring components started again
    profile: Profile | None = None  # the profile a new lab was made from (its env overrides)


def wait_healthy(spec: LabSpec, timeout: float = HEALTHY_TIMEOUT) -> Observation:
    """Block until :func:`lab.topology.problems` is empty; on timeout, name the problems and log tails."""

    stuck_since: list[float] = []

    def probe() -> tuple[bool, tuple[Observation, list[str]]]:
        obs = observe(spec)
        found = problems(spec, obs)
        # A replica whose build cannot read its master's RDB format never syncs (a partial resync
        # would have linked it within a second or two): say so instead of waiting out the timeout.
        stuck = [p for p in found if INCOMPATIBLE in p]
        if not stuck:
            stuck_since.clear()
        elif not stuck_since:
            stuck_since.append(time.monotonic())
        elif time.monotonic() - stuck_since[0] > STUCK_GRACE:
            raise LabError(f"lab {spec.name} cannot become healthy: {stuck[0]}")
        return not found, (obs, found)

    obs, _ = wait_for(
        probe,
        what=f"lab {spec.name} to be healthy",
        timeout=timeout,
        interval=0.01,
        describe=lambda seen: "; ".join(seen[1]),
        detail=lambda: log_tails(spec),
    )
    return obs


def start_nodes(spec: LabSpec, backend: Backend, nodes: Sequence[Node], *, fresh: bool) -> None:
    """Start ``nodes`` in an order that needs no retries: data nodes first (a new lab's master
    before its replicas, so they sync at once), then the Sentinels all together, so each finds
    every peer listening. A restarted data node of a running lab rejoins the current master."""
    check_startable(spec)
    data = [n for n in nodes if n.kind == "redis"]
    master = spec.initial_master
    if fresh and master in data:
        backend.start(spec, [master])
        data.remove(master)
    if data:
        backend.start(spec, data)
        if not fresh:
            for node in data:
                rejoin_as_replica(spec, node)
    sentinels = [n for n in nodes if n.kind == "sentinel"]
    if sentinels:
        backend.start(spec, sentinels)


def up(
    name: str,
    profile_name: str = "lab",
    backend_name: str = "auto",
    home: Path | None = None,
    timeout: float = HEALTHY_TIMEOUT,
    server: Sequence[str] = (),
    tls: bool = False,
    monitoring: bool = False,
) -> UpResult:
    """Bring a lab up and return once it is healthy; a running lab is left as it is, a lab with
    dead nodes gets them restarted. ``server``: ``--server`` values (:func:`lab.servers.assign`);
    ``tls``: TLS only, whatever the profile says (a new lab gets a CA of its own); ``monitoring``: with
    lab.monitoring beside it, whatever the profile says (a running lab without it gets it added)."""
    validate_name(name)
    if backend_name not in ("auto", *BACKENDS):
        raise UsageError(f"unknown backend {backend_name!r} (choose from: auto, {', '.join(BACKENDS)})")
    profile = load_profile(profile_name, lab=True)  # bad input fails before anything is touched
    if tls:
        profile = replace(profile, redis={**profile.redis, "tls": {**profile.redis["tls"], "enabled": True}})
    if monitoring:
        profile = replace(profile, monitoring={**profile.monitoring, "enabled": True})
    if profile.monitoring["enabled"]:
        stack.check_binaries()
    builds = servers.assign(server, NODE_NAMES)
    if profile.redis["tls"]["enabled"]:
        plain = sorted({b.name for b in builds.values() if not b.tls})
        if plain:
            raise LabError(
                f"TLS asked for, but {', '.join(plain)} is built without TLS support (see `lab servers`): "
                "use a TLS build (e.g. the system's redis-server) or leave TLS off"
            )
    home = home or state.default_home()
    started = time.perf_counter()
    with lab_lock(home, name, "up"):
        if state.exists(home, name):
            return _repair(home, name, profile, backend_name, timeout, started, builds if server else None)
        return _create(home, name, profile, backend_name, timeout, started, builds)


def _create(
    home: Path,
    name: str,
    profile: Profile,
    backend_name: str,
    timeout: float,
    started: float,
    builds: dict[str, servers.Server],
) -> UpResult:
    backend = get_backend(backend_name)
    base_dir = state.state_dir(home, name)
    existed = (base_dir / state.KEPT).is_file()  # `down --keep-data` left its data: reuse it (and its passwords)
    if existed:
        state.check_tree(base_dir)  # kept node directories are adopted only as real directories of the lab
    elif base_dir.is_dir() and any(base_dir.iterdir()):
        raise UsageError(
            f"{base_dir} exists but holds no lab (no state, and no `lab down --keep-data` left it): "
            "remove it or choose another name"
        )
    for attempt in range(NET_ATTEMPTS):
        spec = build_spec(
            name,
            profile,
            backend=backend.name,
            base_dir=base_dir,
            layout=backend.layout,
            net=backend.network(name, attempt),
            secrets_dir=base_dir if existed else None,
            servers=builds,
        )
        if profile.monitoring["enabled"]:
            spec = replace(spec, monitoring=monitoring_config.plan(spec, profile))
        backend.prepare(spec)
        try:
            with interruptible():
                render_lab(spec, profile, base_dir, extra=functools.partial(_save_into, spec, profile))
                if existed:
                    state.save(spec)
                    (base_dir / state.KEPT).unlink()
                start_nodes(spec, backend, spec.nodes, fresh=True)
                wait_healthy(spec, timeout)
                if spec.monitoring:
                    stack.start(spec)
        except NetworkOverlap:
            _roll_back(spec, backend, existed)
            if attempt == NET_ATTEMPTS - 1:
                raise
            continue  # another lab took the same free /24 between choice and start
        except NodeStartError as exc:
            tail = _log_tail(exc.log)
            _roll_back(spec, backend, existed)
            if exc.log is None or existed:
                raise
            # Its log went with the new lab's directory: say what it held instead of naming it.
            said = f"\nits log ended:\n{tail}" if tail else ""
            raise LabError(
                f"{exc.node} did not start: {exc.why} (the new lab was removed, its log too){said}"
            ) from None
        except BaseException:
            _roll_back(spec, backend, existed)
            raise
        return UpResult(spec, False, time.perf_counter() - started, [n.name for n in spec.nodes], profile)
    raise AssertionError("unreachable")


def _log_tail(path: Path | None, lines: int = 5) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path else ""
    except OSError:
        return ""


def _save_into(spec: LabSpec, profile: Profile, directory: Path) -> None:
    """A new lab's state (and, TLS on, its CA and certificates for every node's address; its monitoring's
    files)."""
    state.save(spec, directory=directory)
    if spec.tls:
        issue_lab_certificates(directory / TLS_DIR, spec.name, [n.host for n in spec.nodes])
    if spec.monitoring:
        monitoring_config.render(spec, profile, directory)


def _roll_back(spec: LabSpec, backend: Backend, existed: bool) -> None:
    """Remove what a failed new-lab `up` created: its processes or containers, and its directory
    (only its state when the directory held kept data)."""
    with shielded():
        _teardown(spec, backend)
        if existed:
            (spec.base_dir / state.STATE_FILE).unlink(missing_ok=True)
        else:
            state.remove(spec.base_dir)


def _teardown(spec: LabSpec, backend: Backend) -> list[str]:
    """Stop every node (Sentinels first: no failover while the data nodes go), then remove what is
    left; returns what could not be removed."""
    left = stack.stop(spec)  # (first: no alerts about the lab going away)
    delayers.stop_all(spec)  # (their packets pass again; the rules go with remove())
    with contextlib.suppress(LabError):  # remove() takes whatever did not stop
        backend.stop(spec, [*spec.sentinels, *spec.redis_nodes])
    return left + backend.remove(spec)


def _detach(spec: LabSpec, backend: Backend) -> list[str]:
    """An attached lab (hosts it did not start): revert what the lab injected (faults, its iptables chain),
    leave every node running as it is, and forget the lab."""
    from lab import faults

    with contextlib.suppress(LabError):
        faults.heal(spec)
    return backend.remove(spec)


def _repair(
    home: Path,
    name: str,
    wanted: Profile,
    backend_name: str,
    timeout: float,
    started: float,
    builds: dict[str, servers.Server] | None,
) -> UpResult:
    spec = state.load(home, name)
    if wanted.name != spec.profile and str(wanted.source) != spec.profile:
        raise LabError(f"lab {name!r} is running with profile {spec.profile}; run `lab down --name {name}` first")
    if backend_name not in ("auto", spec.backend):
        raise LabError(f"lab {name!r} runs on the {spec.backend} backend; run `lab down --name {name}` first")
    if wanted.redis["tls"]["enabled"] and not spec.tls:  # (a TLS lab stays TLS on a plain `lab up`)
        raise LabError(f"lab {name!r} runs plain text; run `lab down --name {name}` first to change that")
    for node in spec.nodes:
        if builds and (now := spec.server(node)) and builds[node.name] != now:
            asked = builds[node.name]
            # Two different builds of one name (e.g. two compiles of 7.0.15): name them by their files.
            have, want = (now.name, asked.name) if now.name != asked.name else (now.server_bin, asked.server_bin)
            raise LabError(
                f"lab {name!r} runs {have} on {node.name}, not {want}: "
                f"`lab upgrade --name {name} {node.name} --server {want}` changes one node's build"
            )
    backend = get_backend(spec.backend)
    dead = [n for n in spec.nodes if backend.node_state(spec, n) == "down"]
    if not dead:
        try:
            wait_healthy(spec, timeout)
        except WaitTimeout as exc:
            hint = f"; `lab heal --name {name}` undoes recorded faults"
            raise LabError(
                f"lab {name} runs but is not healthy: {exc.headline}{hint}" + (f"\n{exc.detail}" if exc.detail else "")
            ) from None
        spec, restarted = _repair_monitoring(spec, wanted)
        return UpResult(spec, not restarted, time.perf_counter() - started, restarted)
    kept = "the running nodes were left running and every node's data is in place"
    try:
        with interruptible():
            start_nodes(spec, backend, dead, fresh=False)
            faults.forget(spec, [n.name for n in dead])
            wait_healthy(spec, timeout)
    except NodeStartError as exc:
        raise LabError(f"repair of lab {name} failed: {exc}; {kept}") from None
    except WaitTimeout as exc:
        raise LabError(
            f"repair of lab {name} failed: {exc.headline}; {kept}" + (f"\n{exc.detail}" if exc.detail else "")
        ) from None
    spec, restarted = _repair_monitoring(spec, wanted)
    return UpResult(spec, False, time.perf_counter() - started, [n.name for n in dead] + restarted)


def _repair_monitoring(spec: LabSpec, wanted: Profile) -> tuple[LabSpec, list[str]]:
    """Start what is missing of a running lab's monitoring; add monitoring to a lab without it when ``wanted``
    asks for it (a failure takes away only what this added). Returns the lab and what was started."""
    if spec.monitoring is not None:
        dead = [component for component, pid in stack.running(spec).items() if pid is None]
        if dead:
            with interruptible():
                stack.start(spec, only=dead)
        return spec, dead
    if not wanted.monitoring["enabled"]:
        return spec, []
    added = replace(spec, monitoring=monitoring_config.plan(spec, wanted))
    try:
        with interruptible():
            monitoring_config.render(added, wanted, spec.base_dir)
            state.save(added)
            stack.start(added)
    except BaseException:
        with shielded():
            stack.stop(added)
            shutil.rmtree(stack.home(added), ignore_errors=True)
            state.save(spec)
        raise
    return added, ["monitoring (added)"]


@dataclass
class DownResult:
    spec: LabSpec
    left: list[Path]  # entries of the lab directory the lab did not make: never deleted


def down(name: str, home: Path | None = None, keep_data: bool = False) -> DownResult | None:
    """Stop a lab and remove what it made; None when there was nothing to stop."""
    home = home or state.default_home()
    if not state.exists(home, name):  # nothing to stop: create no lock (nor home) for it
        return None
    with lab_lock(home, name, "down"):
        if not state.exists(home, name):
            return None
        try:
            spec = state.load(home, name, runnable=False)
        except state.CorruptState as exc:
            _down_unreadable(home, name, exc)
            return None
        backend = get_backend(spec.backend)
        with shielded():
            leftovers = _detach(spec, backend) if spec.remotes else _teardown(spec, backend)
            if leftovers:
                raise LabError(
                    f"lab {name}: could not remove {'; '.join(leftovers)}; its state is kept in {spec.base_dir}: "
                    f"run `lab down --name {name}` again once that is fixed"
                )
            left = state.remove(spec.base_dir, keep_data=keep_data)
    return DownResult(spec, left)


def left_note(left: Sequence[Path]) -> str:
    """What a removal left because the lab did not make it."""
    if not left:
        return ""
    names = ", ".join(p.name for p in left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
    return f"; kept {names} in {left[0].parent} (not made by the lab)"


def _down_unreadable(home: Path, name: str, why: state.CorruptState) -> None:
    """A lab whose state.json is unreadable: stop every server working in its directory, remove
    what a lab makes there (node directories, secrets, state) and nothing else."""
    directory = state.state_dir(home, name)
    state.check_tree(directory)
    stray = [pid for pid in procs.processes_under(directory) if servers.server_exe(pid)]
    procs.terminate(stray)
    stray += stack.stop_under(directory)
    left = state.remove(directory)
    gone = "removed it" if not left else f"removed the lab's files{left_note(left)}"
    raise LabError(f"{why}: stopped {len(stray)} server process(es) working in it and {gone}")
