"""``lab status``: a running lab as its processes and the wire show it, as one document (the ``--json``
schema, docs/cli.md) and an exit code. Polled by drills and scripts, so it loads only what it reads: the
state, the backend's view of each process, and the nodes' own answers (:func:`lab.topology.observe`, over
:mod:`lab.resp`); not the lifecycle (:mod:`lab.control`), the profile models or redis-py."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lab import delayers, state
from lab.backends import get_backend
from lab.errors import LabError
from lab.faultlog import isolated_nodes, recorded
from lab.spec import LabSpec, Node
from lab.topology import Observation, observe, problems


def status(name: str, home: Path | None = None) -> tuple[dict[str, Any], int]:
    """The lab's status document (the `lab status --json` schema) and exit code 0/1/2."""
    home = home or state.default_home()
    spec = state.load(home, name)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lab-status") as pool:
        # The backend looks at the processes while the nodes answer: a local lab's first look runs each server
        # build's --version once (lab.servers.probe), 6-8 ms each on an unloaded core, longer than the observation.
        looked = pool.submit(_backend_states, spec)
        obs = observe(spec)
        found = problems(spec, obs)
        states = _process_states(spec, obs, looked.result())
    builds = {n.name: _build_name(spec, n) for n in spec.nodes}
    master = obs.master
    master_node = next((n for n in spec.redis_nodes if master == (n.host, n.port)), None)
    doc = {
        "name": spec.name,
        "backend": spec.backend,
        "profile": spec.profile,
        "tls": spec.tls,
        "acl": spec.acl,
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
        "nodes": _data_rows(obs, states, builds),
        "sentinels": [
            {
                "name": view.node.name,
                "role": "sentinel",
                "host": view.node.host,
                "port": view.node.port,
                "state": states[view.node.name],
                "server": builds[view.node.name],
                "master": f"{view.master[0]}:{view.master[1]}" if view.master else None,
                "ckquorum": view.ckquorum or None,
            }
            for view in obs.sentinels
        ],
        "faults": _faults(spec),
        "monitoring": (monitoring := _monitoring(spec)),
    }
    if monitoring:
        down = [c for c, how in monitoring["components"].items() if how != "running"]
        found += [f"monitoring: {c} is not running (`lab up --name {spec.name}` starts it)" for c in down]
        doc["healthy"] = not found
    return doc, 0 if not found else 1


def _monitoring(spec: LabSpec) -> dict[str, Any] | None:
    """Where the lab's Prometheus and Alertmanager answer, and which monitoring processes run."""
    if spec.monitoring is None:
        return None
    from lab.monitoring.stack import running

    return {
        "prometheus": spec.monitoring.url("prometheus"),
        "alertmanager": spec.monitoring.url("alertmanager"),
        "components": {c: "running" if pid else "down" for c, pid in running(spec).items()},
    }


def _faults(spec: LabSpec) -> list[dict[str, Any]]:
    """The recorded faults as applied now: a link fault's delayer running or gone (its packets then pass)."""
    running = delayers.running(spec)
    rows: list[dict[str, Any]] = []
    for fault in recorded(spec):
        row: dict[str, Any] = {"kind": fault.kind, "node": fault.node, "peers": list(fault.peers)}
        row["settings"] = dict(fault.settings)
        if fault.pid:
            row["delayer"] = {"pid": fault.pid, "queue": fault.queue, "running": fault.pid in running}
        rows.append(row | {"key": fault.key})
    served = {f.pid for f in recorded(spec)}
    rows += [
        {"kind": "delayer", "node": None, "key": f"unrecorded delayer pid {pid}"}
        for pid in running
        if pid not in served
    ]
    return rows


def _build_name(spec: LabSpec, node: Node) -> str:
    """ "redis 7.0.15", "system", or what became of a recorded binary (removed since: status still answers)."""
    try:
        build = spec.server(node)
    except LabError:
        return f"{spec.servers[node.name]} (gone)"
    return f"{build.flavour} {build.release}" if build else "system"


def _backend_states(spec: LabSpec) -> dict[str, str]:
    """Per node: up, down or frozen, as the backend sees its process or container."""
    backend = get_backend(spec.backend)
    at_once = getattr(backend, "node_states", None)  # (the ssh backend: one SSH session per node, side by side)
    if at_once is not None:
        return dict(at_once(spec))
    return {node.name: backend.node_state(spec, node) for node in spec.nodes}


def _process_states(spec: LabSpec, obs: Observation, seen: dict[str, str]) -> dict[str, str]:
    """Per node: up, down, frozen or isolated (a recorded fault), as the backend (``seen``) and the wire see it."""
    isolated = isolated_nodes(spec)
    reachable = {v.node.name: v.reachable for v in obs.redis} | {v.node.name: v.reachable for v in obs.sentinels}
    states: dict[str, str] = {}
    for node in spec.nodes:
        current = seen[node.name]
        if node.kind in obs.missing_secrets:  # not asked (no password): the backend's word stands
            pass
        elif current == "up" and node.name in isolated:
            current = "isolated"
        elif current == "up" and not reachable[node.name]:
            current = "down"
        states[node.name] = current
    return states


def _data_rows(obs: Observation, states: dict[str, str], builds: dict[str, str]) -> list[dict[str, Any]]:
    master_offset = max((r.offset for r in obs.redis), default=0)
    return [
        {
            "name": view.node.name,
            "role": view.role.replace("slave", "replica") if view.reachable else "unknown",
            "host": view.node.host,
            "port": view.node.port,
            "state": states[view.node.name],
            "server": builds[view.node.name],
            "offset": view.offset if view.reachable else None,
            "lag_bytes": master_offset - view.offset if view.reachable and view.role == "slave" else None,
            "link": ("up" if view.link_up else "down") if view.role == "slave" else None,
        }
        for view in obs.redis
    ]
