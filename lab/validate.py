"""Validate rendered configs against the real server: every directive a node's file sets must be
what CONFIG GET reports once it runs (catches directives Redis ignores, renames or rejects)."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import cast

import redis

from lab import control
from lab.confparse import ConfFile, parse
from lab.lint.acl import acl_users
from lab.profile import Profile, load_profile
from lab.render import render_node
from lab.spec import LabSpec, Node
from lab.topology import node_client

UNITS = {"k": 1000, "kb": 1024, "m": 1000**2, "mb": 1024**2, "g": 1000**3, "gb": 1024**3}
# Rendered on purpose but overridden at start by manage_*.sh (--daemonize yes), or not a CONFIG parameter.
NOT_COMPARED = {"daemonize", "include"}
#: Not reset by restore_config: they cannot be changed at run time, or Redis rightly changed them.
NOT_RESTORED = {
    "maxclients",
    "bind",
    "bind-source-addr",
    "port",
    "dir",
    "logfile",
    "pidfile",
    "databases",
    "replicaof",  # a failover changes it: that is the lab's state, not drift
    "slaveof",
}
SENTINEL_COMPARED = ("down-after-milliseconds", "failover-timeout", "parallel-syncs")


def normalise(directive: str, value: str) -> str:
    """A rendered value as CONFIG GET spells it (units expanded, flags sorted, replica -> slave)."""

    def units(token: str) -> str:
        m = re.fullmatch(r"(\d+)(k|kb|m|mb|g|gb)", token.lower())
        return str(int(m.group(1)) * UNITS[m.group(2)]) if m else token

    value = " ".join(units(t) for t in value.split())
    if directive == "notify-keyspace-events":
        return "".join(sorted(value))
    return value.replace("replica ", "slave ")


def _rendered(spec: LabSpec, profile: Profile, node: Node) -> ConfFile:
    """The node's config as rendered (Sentinel has since rewritten its file, dropping defaults)."""
    with tempfile.TemporaryDirectory(prefix="lab-validate-") as tmp:
        path = Path(tmp) / spec.files(node).conf.name
        path.write_text(render_node(spec, profile, node))
        return parse(path)


def _drift(spec: LabSpec, profile: Profile, node: Node) -> Iterator[tuple[str, str, str | None]]:
    """(directive, rendered value, live value or None if no such parameter) for every directive."""
    conf = _rendered(spec, profile, node)
    # replicaof is Sentinel's once the lab runs (a failover changes it): the lab's state, not drift.
    special = NOT_COMPARED | {"rename-command", "user", "replicaof", "slaveof"}
    names = dict.fromkeys(d.name for d in conf.directives if d.name not in special)
    with node_client(spec, node) as conn:
        for renamed in conf.all("rename-command"):
            yield (f"rename-command {renamed.args[0]}", *_renamed(conn, *renamed.args))
        yield from _users(conn, conf)
        for name in names:
            live = conn.config_get(name)
            want = " ".join(normalise(name, d.value) for d in conf.all(name))
            got = live.get(name)
            if name == "notify-keyspace-events" and got is not None:
                got = "".join(sorted(got))
            yield name, want, got


def _users(conn: redis.Redis, conf: ConfFile) -> Iterator[tuple[str, str, str]]:
    """("user NAME", rendered state, live state) for every ACL user the file defines: on or off, and
    the SHA-256 of its passwords (ACL GETUSER; its rules come back rewritten, so they are not compared)."""
    for name, user in acl_users(conf).items():
        live = conn.acl_getuser(name)
        want = f"{'on' if user.on else 'off'} {' '.join(sorted(user.hashes)) or 'no password'}"
        if live is None:
            yield f"user {name}", want, "no such user"
            continue
        flags, hashes = cast(list[str], live.get("flags", [])), cast(list[str], live.get("passwords", []))
        yield f"user {name}", want, f"{'on' if 'on' in flags else 'off'} {' '.join(sorted(hashes)) or 'no password'}"


def _renamed(conn: redis.Redis, command: str, new_name: str) -> tuple[str, str]:
    """(what the file asks, what the server does) for ``rename-command`` (not a CONFIG parameter):
    the command gone, or answering to its new name."""

    def exists(name: str) -> bool:
        if not name:
            return False
        # Raw: redis-py's COMMAND INFO parser fails on the nil a missing command gets.
        raw = conn.connection_pool.get_connection()
        try:
            raw.send_command("COMMAND", "INFO", name)  # type: ignore[no-untyped-call]
            reply = raw.read_response()
        finally:
            conn.connection_pool.release(raw)
        return isinstance(reply, list) and reply[0] is not None

    want = f"{command} as {new_name}" if new_name else f"no {command}"
    if exists(command):
        return want, f"{command} still there"
    return want, (f"{command} as {new_name}" if exists(new_name) else f"no {command}")


def restore_config(spec: LabSpec) -> list[str]:
    """CONFIG SET every data node's drifted directives back to their rendered values (a drill that
    changed one at run time and crashed before restoring it); returns what was reset."""
    profile = load_profile(spec.profile, lab=True)
    reset = []
    for node in spec.redis_nodes:
        for name, want, got in _drift(spec, profile, node):
            if got is None or got == want or name in NOT_RESTORED or name.startswith(("rename-command", "user ")):
                continue
            with node_client(spec, node) as conn:
                try:
                    conn.config_set(name, want)
                except redis.ResponseError as exc:  # immutable at run time: report it, leave it
                    reset.append(f"{node.name}: {name} stays {got!r} ({str(exc).splitlines()[0]})")
                    continue
            reset.append(f"{node.name}: {name} {got!r} -> {want!r}")
    return reset


def mismatches(spec: LabSpec) -> tuple[list[str], int]:
    """(differences between what each running node was rendered with and its live config, directives compared)."""
    found: list[str] = []
    compared = 0
    profile = load_profile(spec.profile, lab=True)
    for node in spec.redis_nodes:
        for name, want, got in _drift(spec, profile, node):
            if got is None:
                found.append(f"{node.name}: CONFIG GET {name} knows no such parameter")
                continue
            compared += 1
            if got != want:
                found.append(f"{node.name}: {name} rendered {want!r}, server runs {got!r}")
    for node in spec.sentinels:
        conf = _rendered(spec, profile, node)
        with node_client(spec, node) as conn:
            master = conn.sentinel_master(spec.master_name)
            for name, want, got in _users(conn, conf):
                compared += 1
                if got != want:
                    found.append(f"{node.name}: {name} rendered {want!r}, Sentinel runs {got!r}")
        for name in SENTINEL_COMPARED:
            rendered = conf.get(f"sentinel {name}")
            compared += 1
            if rendered is None or rendered.args[-1] != str(master[name]):
                found.append(
                    f"{node.name}: sentinel {name} rendered {rendered and rendered.args[-1]!r}, "
                    f"Sentinel runs {master[name]!r}"
                )
    return found, compared


def validate_profile(name: str, server: Sequence[str] = ()) -> list[str]:
    """Bring the profile up as a throwaway loopback lab on the builds ``server`` names (``--server``
    values; default the system's): it must become healthy; compare; tear down."""
    with tempfile.TemporaryDirectory(prefix="lab-validate-") as tmp:
        home = Path(tmp)
        lab_name = f"validate-{os.getpid() % 100000}-{Path(name).stem}"[:40]
        spec = control.up(lab_name, name, "local", home, timeout=60, server=server).spec
        try:
            return mismatches(spec)[0]
        finally:
            control.down(lab_name, home)
