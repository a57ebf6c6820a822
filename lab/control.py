"""Lab lifecycle used by the CLI and the pytest plugin: up, down, status, wait for health."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab import state
from lab.backends import get_backend
from lab.backends.base import Backend
from lab.errors import LabError
from lab.faults import isolated_nodes
from lab.profile import Profile, load_profile
from lab.spec import LabSpec, Node, build_spec, validate_name
from lab.topology import Observation, observe, problems
from lab.waits import wait_for

HEALTHY_TIMEOUT = 30.0


@dataclass
class UpResult:
    spec: LabSpec
    already_running: bool
    seconds: float


def log_tails(spec: LabSpec, backend: Backend, lines: int = 5) -> str:
    out = []
    for node in spec.nodes:
        path = backend.log_path(spec, node)
        try:
            tail = path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            continue
        out.append(f"--- {node.name} ({path})\n" + "\n".join(tail))
    return "\n".join(out)


def wait_healthy(spec: LabSpec, timeout: float = HEALTHY_TIMEOUT) -> Observation:
    """Block until :func:`lab.topology.problems` is empty; on timeout, name the problems and log tails."""
    backend = get_backend(spec.backend)

    def probe() -> tuple[bool, tuple[Observation, list[str]]]:
        obs = observe(spec)
        found = problems(spec, obs)
        return not found, (obs, found)

    obs, _ = wait_for(
        probe,
        what=f"lab {spec.name} to be healthy",
        timeout=timeout,
        describe=lambda seen: "; ".join(seen[1]),
        detail=lambda: log_tails(spec, backend),
    )
    return obs


def up(
    name: str,
    profile_name: str = "lab",
    backend_name: str = "auto",
    home: Path | None = None,
    timeout: float = HEALTHY_TIMEOUT,
) -> UpResult:
    """Bring a lab up and return once it is healthy; a running lab is left as it is."""
    validate_name(name)
    home = home or state.default_home()
    started = time.perf_counter()
    backend = get_backend(backend_name)
    if state.exists(home, name):
        spec = state.load(home, name)
        wanted = load_profile(profile_name)
        if wanted.name != spec.profile and str(wanted.source) != spec.profile:
            raise LabError(f"lab {name!r} is running with profile {spec.profile}; run `lab down --name {name}` first")
        running = get_backend(spec.backend)
        if all(running.node_state(spec, n) != "down" for n in spec.nodes):
            return UpResult(spec, True, time.perf_counter() - started)
        backend = running
        profile = wanted
    else:
        profile = load_profile(profile_name)
        spec = _start_new(name, profile, backend, home)
        return _healthy_or_down(spec, backend, timeout, started)
    backend.up(spec, profile)
    return _healthy_or_down(spec, backend, timeout, started)


def _start_new(name: str, profile: Profile, backend: Backend, home: Path) -> LabSpec:
    base_dir = state.state_dir(home, name)
    if backend.name != "compose":
        spec = build_spec(name, profile, backend=backend.name, base_dir=base_dir)
        backend.up(spec, profile)
        return spec
    from lab.backends.compose import choose_net

    for attempt in range(5):  # another lab may take the same free /24 between choice and start
        spec = build_spec(
            name, profile, backend="compose", base_dir=base_dir, layout="compose", net=choose_net(name, attempt)
        )
        try:
            backend.up(spec, profile)
            return spec
        except LabError as exc:
            if "overlap" not in str(exc).lower() or attempt == 4:
                raise
    raise AssertionError("unreachable")


def _healthy_or_down(spec: LabSpec, backend: Backend, timeout: float, started: float) -> UpResult:
    try:
        wait_healthy(spec, timeout)
    except LabError:
        backend.down(spec)
        raise
    return UpResult(spec, False, time.perf_counter() - started)


def down(name: str, home: Path | None = None, keep_data: bool = False) -> LabSpec | None:
    """Stop a lab and remove its state; None when there was nothing to stop."""
    home = home or state.default_home()
    if not state.exists(home, name):
        return None
    spec = state.load(home, name)
    get_backend(spec.backend).down(spec, keep_data=keep_data)
    return spec


def status(name: str, home: Path | None = None) -> tuple[dict[str, Any], int]:
    """The lab's status document (the `lab status --json` schema) and exit code 0/1/2."""
    home = home or state.default_home()
    spec = state.load(home, name)
    backend = get_backend(spec.backend)
    obs = observe(spec)
    found = problems(spec, obs)
    isolated = isolated_nodes(spec)

    def node_state(node: Node, reachable: bool) -> str:
        current = backend.node_state(spec, node)
        if current == "up" and node.name in isolated:
            return "isolated"
        return current if current != "up" or reachable else "down"

    master = obs.master
    offsets = {r.node.name: r.offset for r in obs.redis}
    master_offset = max(offsets.values(), default=0)
    nodes = []
    for view in obs.redis:
        nodes.append(
            {
                "name": view.node.name,
                "role": view.role.replace("slave", "replica") if view.reachable else "unknown",
                "host": view.node.host,
                "port": view.node.port,
                "state": node_state(view.node, view.reachable),
                "offset": view.offset if view.reachable else None,
                "lag_bytes": master_offset - view.offset if view.reachable and view.role == "slave" else None,
                "link": ("up" if view.link_up else "down") if view.role == "slave" else None,
            }
        )
    sentinels = [
        {
            "name": view.node.name,
            "role": "sentinel",
            "host": view.node.host,
            "port": view.node.port,
            "state": node_state(view.node, view.reachable),
            "master": f"{view.master[0]}:{view.master[1]}" if view.master else None,
            "ckquorum": view.ckquorum or None,
        }
        for view in obs.sentinels
    ]
    master_node = next((n for n in spec.redis_nodes if master == (n.host, n.port)), None)
    doc = {
        "name": spec.name,
        "backend": spec.backend,
        "profile": spec.profile,
        "healthy": not found,
        "problems": found,
        "master": {
            "name": master_node.name if master_node else None,
            "host": master[0] if master else None,
            "port": master[1] if master else None,
        },
        "master_name": spec.master_name,
        "quorum": spec.quorum,
        "quorum_ok": obs.quorum_ok,
        "nodes": nodes,
        "sentinels": sentinels,
    }
    return doc, 0 if not found else 1
