"""`lab deploy -i INVENTORY`: a profile rendered for the inventory's hosts and deployed by Ansible
(ansible/site.yml, the role ansible/roles/redis_ha), then each host's outcome in a line.

lab computes every node's template variables exactly as `lab render` does (:func:`lab.render.node_context`),
with the hosts' addresses from the inventory and the passwords from its vaulted variables
(:mod:`lab.hosts.vault`); Ansible's template module renders conf/*.tpl with them on the hosts. The
document reaches the role in the environment of ansible-playbook (REDIS_HA_DEPLOY): its passwords are
on no command line and in no file lab writes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from lab import ANSIBLE_DIR, CONF_DIR, SCRIPTS_DIR
from lab.errors import LabError, UsageError
from lab.hosts import vault
from lab.hosts.inventory import Inventory, ansible_bin, ansible_env, close_connections, error_line, load
from lab.render import TEMPLATES, node_context
from lab.spec import LabSpec, Node, build_spec

#: Where the role puts things on a host (the Debian package's places for the configs).
CONF_ON_HOST = PurePosixPath("/etc/redis")
STATE_ON_HOST = PurePosixPath("/etc/redis-ha")  # the role's rendered copies (0600 root): what it deployed
OPT_ON_HOST = PurePosixPath("/opt/redis-ha")
#: One command per node there: ``/opt/redis-ha/bin/redis-1 start|stop|restart|status`` (what lab attach runs).
BIN_ON_HOST = OPT_ON_HOST / "bin"
#: The systemd unit the role installs where systemd is (it runs the boot and shutdown hooks).
UNIT_NAME = "redis-ha.service"
SCRIPTS = ("common_env.sh", "manage_redis_server.sh", "manage_sentinel.sh")
SERVICE_USER = "redis"
#: The name a deployment's spec carries (seeds a profile's Sentinel ids, as `lab render --inventory` does).
DEPLOY_NAME = "deploy"


@dataclass
class HostOutcome:
    host: str
    nodes: list[str]
    changed: list[str] = field(default_factory=list)
    failed: str = ""
    #: What waits for the user (a master's new config takes effect when it restarts).
    pending: list[str] = field(default_factory=list)


@dataclass
class Deployment:
    spec: LabSpec
    inventory: Inventory
    hosts: dict[str, HostOutcome]
    check: bool
    returncode: int

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not any(h.failed for h in self.hosts.values())

    @property
    def changed(self) -> int:
        return sum(len(h.changed) for h in self.hosts.values())


def conf_on_host(node: Node) -> PurePosixPath:
    return CONF_ON_HOST / ("redis.conf" if node.kind == "redis" else "sentinel.conf")


def deployment_spec(inv: Inventory, profile_name: str) -> tuple[LabSpec, Any]:
    """The lab model of the deployment (layout ``hosts``) and the profile, with the inventory's addresses
    and vaulted passwords; a missing password or a profile without host paths is one line (exit 2)."""
    from lab.profile import load_profile

    profile = load_profile(profile_name)
    if not profile.paths:
        raise UsageError(
            f"profile {profile.name} has no topology.paths (where data, pid and log files go on a host): "
            "deploy the production profile, or a profile that extends it"
        )
    variables = inv.variables()
    acl, missing = vault.acl_passwords(variables, profile.acl)
    password, sentinel_password = (
        vault.literal(var, str(variables[var])) if variables.get(var) else None
        for var in (vault.PASSWORD, vault.SENTINEL_PASSWORD)
    )
    if not profile.acl:
        given = ((vault.PASSWORD, password), (vault.SENTINEL_PASSWORD, sentinel_password))
        missing += [var for var, value in given if not value]
    if missing:
        raise UsageError(
            f"inventory {inv.path}: no {', '.join(missing)} (the deployment's passwords: put them in a vars file "
            "you encrypt with ansible-vault, docs/deploy.md)"
        )
    hosts = {node: inv.address(host) for node, host in inv.node_hosts().items()}
    profile = replace(
        profile,
        hosts=hosts,
        password=str(password) if password else None,
        sentinel_password=str(sentinel_password) if sentinel_password else None,
        acl_passwords=acl,
    )
    spec = build_spec(DEPLOY_NAME, profile, backend="hosts", base_dir=Path("/nonexistent"), layout="hosts")
    return spec, profile


def document(inv: Inventory, spec: LabSpec, profile: Any) -> dict[str, Any]:
    """What the role deploys: per node its host, template, live config, directories and variables."""
    on_host = inv.node_hosts()
    nodes, runs = [], []
    for node in spec.nodes:
        files = spec.files(node)
        conf = conf_on_host(node)
        dirs = [
            {"path": str(conf.parent), "owner": SERVICE_USER, "mode": "0750"},  # Sentinel rewrites by rename here
            {"path": str(files.dir), "owner": SERVICE_USER, "mode": "0750"},
            {"path": str(files.logfile.parent), "owner": SERVICE_USER, "mode": "0750"},
            {"path": str(files.pidfile.parent), "owner": SERVICE_USER, "mode": "0755"},
        ]
        run = {
            "name": node.name,
            "kind": node.kind,
            "host": on_host[node.name],
            "port": node.port,
            "conf": str(conf),
            "pidfile": str(files.pidfile),
            "script": "manage_redis_server.sh" if node.kind == "redis" else "manage_sentinel.sh",
            "dirs": dirs,
        }
        runs.append(run)
        # (the template's variables hold passwords: only the role's no_log tasks loop over these)
        nodes.append({**run, "template": TEMPLATES[node.kind], "context": node_context(spec, profile, node)})
    return {
        "profile": profile.name,
        "user": SERVICE_USER,
        "conf_src": str(CONF_DIR),
        "scripts_src": str(SCRIPTS_DIR),
        "scripts": list(SCRIPTS),
        "state_dir": str(STATE_ON_HOST),
        "scripts_dir": str(OPT_ON_HOST / "scripts"),
        "boot_hook": str(OPT_ON_HOST / "boot"),
        "shutdown_hook": str(OPT_ON_HOST / "shutdown"),
        "unit": UNIT_NAME,
        "bin_dir": str(BIN_ON_HOST),
        "dirs": [
            {"path": str(STATE_ON_HOST), "owner": "root", "mode": "0700"},
            {"path": str(OPT_ON_HOST), "owner": "root", "mode": "0755"},
            {"path": str(OPT_ON_HOST / "scripts"), "owner": "root", "mode": "0755"},
            {"path": str(BIN_ON_HOST), "owner": "root", "mode": "0755"},
        ],
        "login": _login(spec),
        "nodes": nodes,
        "runs": runs,
    }


def _login(spec: LabSpec) -> dict[str, str]:
    """What the lifecycle scripts log in with on a host (the ``admin`` users; ``default`` without ACL)."""
    found = {}
    for kind, prefix in (("redis", "REDIS"), ("sentinel", "SENTINEL")):
        auth = spec.auth(kind)  # type: ignore[arg-type]
        if auth["username"]:
            found[f"{prefix}_USERNAME"] = str(auth["username"])
        found[f"{prefix}_PASSWORD"] = str(auth["password"] or "")
    return found


def rendered_for(inventory_path: Path, profile_name: str, vault_password_file: Path | None) -> tuple[LabSpec, Any]:
    """The spec and profile `lab deploy` would deploy (for `lab render --inventory`)."""
    return deployment_spec(load(inventory_path, vault_password_file), profile_name)


def scratch_dir(home: Path) -> tempfile.TemporaryDirectory[str]:
    """A run's own directory for Ansible's files (0700, under the home; removed when the run ends). A
    ``kill -9`` leaves it: the next run removes every one whose process is gone."""
    root = home / ".deploy"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    for left in root.iterdir():
        pid = left.name.split("-", 1)[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(left, ignore_errors=True)
    return tempfile.TemporaryDirectory(prefix=f"{os.getpid()}-", dir=root)


def run(
    inventory_path: Path,
    profile_name: str,
    *,
    home: Path,
    check: bool = False,
    vault_password_file: Path | None = None,
) -> Deployment:
    from lab import interrupts

    inv = load(inventory_path, vault_password_file)
    spec, profile = deployment_spec(inv, profile_name)
    doc = document(inv, spec, profile)
    with scratch_dir(home) as tmp:
        scratch = Path(tmp)
        events = scratch / "events.jsonl"
        env = ansible_env(scratch, vault_password_file) | {
            "REDIS_HA_DEPLOY": json.dumps(doc),
            "REDIS_HA_EVENTS": str(events),
        }
        argv = [ansible_bin("ansible-playbook"), "-i", str(inventory_path), str(ANSIBLE_DIR / "site.yml")]
        argv += ["--check"] if check else []

        def look() -> interrupts.Outcome:
            changed = [f"{h.host} ({', '.join(h.changed)})" for h in _outcomes(inv, events).values() if h.changed]
            said = f"changed before the stop: {'; '.join(changed)}" if changed else "no host was changed"
            return "left", f"lab deploy stopped halfway: {said} (run it again to finish)"

        interrupts.explain("deploy", look)
        try:
            returncode, output = _play(argv, env)
        finally:
            close_connections(scratch)
        outcomes = _outcomes(inv, events)
        interrupts.done("deploy")
    if returncode != 0 and not any(h.failed for h in outcomes.values()):
        raise LabError(f"ansible-playbook exited {returncode}: {error_line(output)}")
    return Deployment(spec, inv, outcomes, check, returncode)


def _interrupted_with_us() -> None:
    """In ansible-playbook before it runs: a SIGINT (Ansible's own clean stop) when `lab deploy` dies, a
    ``kill -9`` included (PR_SET_PDEATHSIG)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGINT, 0, 0, 0)


def _play(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run ansible-playbook; an interrupt stops it (SIGINT, as Ctrl-C would, then SIGKILL) before it goes on
    (the command's interrupt message says which hosts it had changed)."""
    proc = subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=_interrupted_with_us,
    )
    try:
        output, _ = proc.communicate()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    return proc.returncode, output


def _outcomes(inv: Inventory, events: Path) -> dict[str, HostOutcome]:
    nodes_of: dict[str, list[str]] = {h: [] for h in inv.hosts}
    for node, host in inv.node_hosts().items():
        nodes_of[host].append(node)
    outcomes = {h: HostOutcome(h, nodes) for h, nodes in nodes_of.items()}
    try:
        lines = events.read_text().splitlines()
    except FileNotFoundError:
        lines = []
    for line in lines:
        event = json.loads(line)
        outcome = outcomes.get(event["host"])
        if outcome is None:
            continue
        if event["status"] == "changed":
            outcome.changed.append(event["task"])
        elif event["status"] == "pending":
            outcome.pending.append(event["msg"])
        elif event["status"] in ("failed", "unreachable") and not outcome.failed:
            why = event["msg"].splitlines()[0] if event["msg"] else event["status"]
            outcome.failed = f"{event['task']}: {why}" if event["status"] == "failed" else f"unreachable: {why}"
    return outcomes
