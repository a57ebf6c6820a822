"""Render every node's config from conf/*.tpl and a :class:`LabSpec`, atomically."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import jinja2

from lab import CONF_DIR
from lab.errors import LabError
from lab.profile import Profile
from lab.spec import LabSpec, Node, write_secret

TEMPLATES = {"redis": "redis.conf.tpl", "sentinel": "sentinel.conf.tpl"}


def _environment() -> jinja2.Environment:
    # Ansible's template module defaults: trim_blocks on, lstrip_blocks off, no custom filters.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(CONF_DIR)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def node_context(spec: LabSpec, profile: Profile, node: Node) -> dict[str, Any]:
    """The variables a template sees for one node (the same names an Ansible play would pass)."""
    files = spec.config_paths(node)
    local = spec.layout == "local"
    master = spec.initial_master
    role = "sentinel" if node.kind == "sentinel" else ("master" if node == master else "replica")
    seed: dict[str, Any] | None = None
    if node.kind == "sentinel" and profile.seed_sentinel_discovery:
        seed = {
            "myid": spec.sentinel_myid(node),
            "replicas": [{"host": n.host, "port": n.port} for n in spec.redis_nodes if n != master],
            "sentinels": [
                {"host": s.host, "port": s.port, "myid": spec.sentinel_myid(s)} for s in spec.sentinels if s != node
            ],
        }
    if spec.layout == "hosts":
        bind = list(profile.redis.get("bind", ["*", "-::*"]))
    else:  # compose: its address, plus loopback for the container's healthcheck
        bind = [node.host] if local else [node.host, "127.0.0.1"]
    return {
        "profile_name": profile.name,
        "node": {
            "name": node.name,
            "role": role,
            "host": node.host,
            "port": node.port,
            "bind": bind,
            # Each lab node owns a loopback address: connect out from it so peers see the right source.
            "bind_source_addr": node.host if local else "",
            "announce_ip": node.host if spec.layout != "hosts" and node.kind == "sentinel" else "",
            "replica_priority": node.replica_priority,
            "dir": str(files.dir),
            "pidfile": str(files.pidfile),
            "logfile": str(files.logfile),
        },
        "master": {"name": spec.master_name, "host": master.host, "port": master.port},
        "redis": profile.redis,
        "sentinel": profile.sentinel,
        "auth": {"password": spec.password, "sentinel_password": spec.sentinel_password, "user": ""},
        "databases": spec.databases,
        "seed": seed,
    }


def render_node(spec: LabSpec, profile: Profile, node: Node) -> str:
    env = _environment()
    try:
        return env.get_template(TEMPLATES[node.kind]).render(node_context(spec, profile, node))
    except jinja2.UndefinedError as exc:
        raise LabError(f"{TEMPLATES[node.kind]}: {exc.message} (profile {profile.name})") from None
    except jinja2.TemplateError as exc:
        raise LabError(f"{TEMPLATES[node.kind]}: {exc}") from None


def render_lab(spec: LabSpec, profile: Profile, out_dir: Path) -> list[Path]:
    """Render all six nodes into ``out_dir/<node>/`` (0700 dirs, 0600 files: they hold secrets).

    Every file is rendered in memory first, written to a temporary sibling directory, and moved
    into place only when all succeeded: an error never leaves a half-rendered directory. Files
    already in a node directory (data, logs) are kept; the configs are replaced.
    """
    rendered = {node: render_node(spec, profile, node) for node in spec.nodes}
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.render-", dir=out_dir.parent))
    try:
        for node, text in rendered.items():
            target = staging / node.name / spec.files(node).conf.name
            target.parent.mkdir(mode=0o700)
            write_secret(target, text.rstrip("\n"))
        out_dir.mkdir(mode=0o700, exist_ok=True)
        written = []
        for node in spec.nodes:
            final_dir = out_dir / node.name
            final_dir.mkdir(mode=0o700, exist_ok=True)
            conf = final_dir / spec.files(node).conf.name
            os.replace(staging / node.name / conf.name, conf)
            written.append(conf)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)
