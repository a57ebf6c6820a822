"""Render every node's config from conf/*.tpl and a :class:`LabSpec`, atomically."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab import CONF_DIR
from lab.capabilities import accepts, adapt, refused
from lab.errors import LabError, UsageError
from lab.secretfiles import write_secret
from lab.servers import Server
from lab.spec import LabSpec, Layout, Node, build_spec, write_acl_secrets

#: The user Sentinel logs in to the data nodes as, in a lab with ACL users (`sentinel auth-user`).
SENTINEL_AUTH_USER = "sentinel"
#: What Valkey 9's coordinated failover (SENTINEL FAILOVER <master> COORDINATED, valkey-io/valkey#1292) runs on the
#: data nodes as that user beyond what any failover does: ACL rule -> a command it allows (lint, lab failover).
SENTINEL_COORDINATED = {"failover": ("FAILOVER",), "client|pause": ("CLIENT", "PAUSE", "1", "WRITE")}

if TYPE_CHECKING:  # Jinja2 and the profile models are imported when something is rendered
    import jinja2

    from lab.profile import Profile

TEMPLATES = {"redis": "redis.conf.tpl", "sentinel": "sentinel.conf.tpl"}
#: The alert rules (lab.monitoring), rendered with a profile's ``monitoring.alerts`` timers.
RULES_TEMPLATE = "monitoring/redis-ha.rules.yml.tpl"
#: Where `lab render` and a lab put them, relative to the output's (or the lab's) directory.
RULES_FILE = "monitoring/rules/redis-ha.rules.yml"


def environment() -> jinja2.Environment:
    import jinja2

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
    # Each local node owns a loopback address and connects out from it, so peers (and the
    # firewall rules of `lab isolate`) see who it is. A build without bind-source-addr (Redis 6.2)
    # connects from 127.0.0.1: a replica then announces its address instead.
    server = spec.server(node)
    source_addr = local and (server is None or accepts(server, "bind-source-addr"))
    announce = spec.layout != "hosts" and (node.kind == "sentinel" or (local and not source_addr))
    return {
        "profile_name": profile.name,
        "node": {
            "name": node.name,
            "role": role,
            "host": node.host,
            "port": node.port,
            "bind": bind,
            "bind_source_addr": node.host if source_addr else "",
            "announce_ip": node.host if announce else "",
            "replica_priority": node.replica_priority,
            "dir": str(files.dir),
            "pidfile": str(files.pidfile),
            "logfile": str(files.logfile),
        },
        "master": {"name": spec.master_name, "host": master.host, "port": master.port},
        "redis": profile.redis,
        "sentinel": profile.sentinel,
        "auth": auth_context(spec, profile, node),
        "tls": tls_context(spec, profile, node),
        "databases": spec.databases,
        "seed": seed,
    }


def auth_context(spec: LabSpec, profile: Profile, node: Node) -> dict[str, Any]:
    """Who authenticates as whom. Without ACL users: one password per kind (``default`` user).
    With them: ``user`` lines (SHA-256 of each password, never the password) for the node's kind;
    replicas log in as ``replica``, Sentinels to data nodes as ``sentinel`` and to each other as ``peer``."""
    if not spec.acl:
        return {
            "acl": False,
            "password": spec.password,
            "sentinel_password": spec.sentinel_password,
            "masteruser": "",
            "masterauth": spec.password,
            "sentinel_auth_user": "",
            "sentinel_auth_pass": spec.password,
        }
    section = "users" if node.kind == "redis" else "sentinel_users"
    users = [
        {"name": name, "hash": _sha256(spec.acl_passwords[f"{section}/{name}"]), "rules": rules}
        for name, rules in profile.acl[section].items()
    ]
    return {
        "acl": True,
        "users": users,
        "masteruser": "replica",
        "masterauth": spec.acl_passwords["users/replica"],
        "sentinel_auth_user": SENTINEL_AUTH_USER,
        "sentinel_auth_pass": spec.acl_passwords["users/sentinel"],
        "peer_user": "peer",
        "peer_pass": spec.acl_passwords["sentinel_users/peer"],
    }


def tls_context(spec: LabSpec, profile: Profile, node: Node) -> dict[str, Any]:
    """TLS files as the node's config names them: a lab's own CA, or the production profile's files."""
    wanted = profile.redis["tls"]
    if not spec.tls:
        return {"enabled": False}
    if spec.layout == "hosts":
        missing = [k for k in ("cert_file", "key_file", "ca_cert_file") if not wanted[k]]
        if missing:
            raise LabError(f"profile {profile.name}: redis.tls.enabled needs {', '.join('tls.' + k for k in missing)}")
        files = {k: wanted[k] for k in ("cert_file", "key_file", "ca_cert_file")}
    else:
        lab = spec.tls_files(node)
        files = {"cert_file": str(lab.cert), "key_file": str(lab.key), "ca_cert_file": str(lab.ca)}
    return {"enabled": True, "auth_clients": wanted["auth_clients"], **files}


def _sha256(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def render_node(spec: LabSpec, profile: Profile, node: Node, *, adapted: bool = True) -> str:
    """The node's config; for a lab that names the node's build, without what that build refuses
    (:mod:`lab.capabilities`) unless ``adapted=False``."""
    import jinja2

    env = environment()
    try:
        text = env.get_template(TEMPLATES[node.kind]).render(node_context(spec, profile, node))
    except jinja2.UndefinedError as exc:
        raise LabError(f"{TEMPLATES[node.kind]}: {exc.message} (profile {profile.name})") from None
    except jinja2.TemplateError as exc:
        raise LabError(f"{TEMPLATES[node.kind]}: {exc}") from None
    server = spec.server(node)
    return adapt(text, server)[0] if server and adapted else text


def left_out(spec: LabSpec, profile: Profile) -> dict[str, list[str]]:
    """Per build the lab names: the directives its render leaves out (the build refuses them)."""
    found: dict[str, set[str]] = {}
    for node in spec.nodes:
        server = spec.server(node)
        if server:
            names = {name for _, name, _ in refused(render_node(spec, profile, node, adapted=False), server)}
            found.setdefault(server.name, set()).update(names)
    return {build: sorted(names) for build, names in found.items() if names}


def render_rules(profile: Profile) -> str:
    """The shipped alert rules (conf/monitoring/redis-ha.rules.yml.tpl) with ``profile``'s timers."""
    return str(environment().get_template(RULES_TEMPLATE).render(alerts=profile.monitoring["alerts"]))


def render_profile(
    profile: Profile, out_dir: Path, name: str = "default", servers: dict[str, Server] | None = None
) -> tuple[LabSpec, list[Path]]:
    """Render a profile as `lab render` does, without starting anything: on its production hosts
    when it names them (``topology.hosts``), else on the lab's loopback addresses for ``name``;
    for the builds in ``servers`` (node -> build) when given."""
    layout: Layout = "hosts" if profile.hosts else "local"
    spec = build_spec(name, profile, backend="none", base_dir=out_dir, layout=layout, servers=servers)
    generated = {k: v for k, v in spec.acl_passwords.items() if k not in profile.acl_passwords}

    def extra(staging: Path) -> None:
        # The configs hold only their hashes: these files are the one copy of a generated password.
        write_acl_secrets(staging, generated)
        write_secret(staging / RULES_FILE, render_rules(profile).rstrip("\n"))  # what Prometheus loads

    return spec, render_lab(spec, profile, out_dir, extra=extra)


def render_lab(
    spec: LabSpec, profile: Profile, out_dir: Path, *, extra: Callable[[Path], None] | None = None
) -> list[Path]:
    """Render all six nodes into ``out_dir/<node>/`` (0700 dirs, 0600 files: they hold secrets).

    All or nothing: every file is rendered in memory, written to a staging directory beside
    ``out_dir`` (``extra`` may add files there, e.g. a new lab's state), and published only when
    all of it was written: a new ``out_dir`` by one rename, an existing one file by file with the
    old files restored on failure. Files already in a node directory (data, logs) are kept.
    """
    rendered = {node: render_node(spec, profile, node) for node in spec.nodes}
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{out_dir} is a file, not a directory")
    rules_dir = Path(RULES_FILE).parent
    for inside in [*(Path(node.name) for node in spec.nodes), rules_dir.parent, rules_dir]:
        if (out_dir / inside).is_symlink():
            raise UsageError(f"{out_dir / inside} is a symbolic link: refusing to write through it (remove it)")
    for lab_dir in (d for d in (out_dir, *out_dir.parents) if (d / "state.json").exists()):
        what = "is a lab's directory" if lab_dir == out_dir else f"is inside the directory of the lab {lab_dir}"
        raise UsageError(
            f"{out_dir} {what}: re-rendering would overwrite what its nodes and Sentinels run from "
            "(`lab down` it first, or render elsewhere)"
        )
    staging: Path | None = None
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.render-", dir=out_dir.parent))
        for node, text in rendered.items():
            target = staging / node.name / spec.files(node).conf.name
            target.parent.mkdir(mode=0o700)
            write_secret(target, text.rstrip("\n"))
        if extra is not None:
            extra(staging)
        if not out_dir.exists():
            os.rename(staging, out_dir)
            staging = None
        else:
            _publish_into(staging, out_dir, [spec.files(n).conf.name for n in spec.nodes], spec)
            nodes = {n.name for n in spec.nodes}
            for extra_entry in [e for e in staging.iterdir() if e.name not in nodes]:  # users/, tls/, state
                if extra_entry.name == RULES_FILE.split("/")[0]:  # a directory Prometheus may share: file by file
                    for made in (p for p in extra_entry.rglob("*") if p.is_file()):
                        target = out_dir / made.relative_to(staging)
                        target.parent.mkdir(parents=True, exist_ok=True)
                        os.replace(made, target)
                    continue
                if extra_entry.is_dir():
                    shutil.rmtree(out_dir / extra_entry.name, ignore_errors=True)
                os.replace(extra_entry, out_dir / extra_entry.name)
    except OSError as exc:
        raise LabError(f"cannot write {exc.filename or out_dir}: {exc.strerror}") from None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return [out_dir / node.name / spec.files(node).conf.name for node in spec.nodes]


def _publish_into(staging: Path, out_dir: Path, names: list[str], spec: LabSpec) -> None:
    """Move staged configs over an existing directory; on any failure put every old file back."""
    done: list[tuple[Path, Path | None]] = []  # (published file, its backup or None if new)
    created: list[Path] = []
    try:
        for node, name in zip(spec.nodes, names, strict=True):
            final_dir = out_dir / node.name
            if not final_dir.is_dir():
                final_dir.mkdir(mode=0o700)
                created.append(final_dir)
            conf = final_dir / name
            backup = None
            if conf.exists():
                backup = staging / node.name / f".{name}.old"
                os.link(conf, backup)
            os.replace(staging / node.name / name, conf)
            done.append((conf, backup))
    except OSError:
        for conf, backup in reversed(done):
            if backup is None:
                conf.unlink(missing_ok=True)
            else:
                os.replace(backup, conf)
        for directory in reversed(created):
            shutil.rmtree(directory, ignore_errors=True)
        raise
